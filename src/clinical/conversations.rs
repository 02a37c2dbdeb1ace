//! The portal's case flow: a patient opens a conversation (subject, first message, symptoms)
//! → `pending`; a clinician on the care team replies → `active`; either side closes it.
//! Messages are append-only (a trigger refuses UPDATE/DELETE).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::allergies::substance as short_text;
use super::error::ClinicalError;
use super::page::{List, Page};
use super::{Access, Req, require};
use crate::db::ClaimRole;
use crate::domain::{ClinicalText, SymptomSeverity, parse_date};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewSymptom {
    pub name: String,
    /// 1–10.
    pub severity: i64,
    /// YYYY-MM-DD, not in the future.
    pub onset: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewConversation {
    pub subject: String,
    pub message: String,
    #[serde(default)]
    pub symptoms: Vec<NewSymptom>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewMessage {
    pub body: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Symptom {
    pub id: Uuid,
    pub name: String,
    pub severity: i16,
    #[schema(value_type = Option<String>, format = Date)]
    pub onset: Option<NaiveDate>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub subject: String,
    /// pending, active, closed.
    pub status: String,
    pub assigned_clinician_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symptoms: Option<Vec<Symptom>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    patient_id: Uuid,
    subject_enc: Vec<u8>,
    status: String,
    assigned_clinician_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

const COLS: &str = "id, patient_id, subject_enc, status::text AS status, assigned_clinician_id, created_at";

fn open(req: &Req<'_>, r: Row) -> Result<Conversation, ClinicalError> {
    Ok(Conversation {
        subject: req.open("conversations", "subject_enc", r.id, &r.subject_enc)?,
        id: r.id,
        patient_id: r.patient_id,
        status: r.status,
        assigned_clinician_id: r.assigned_clinician_id,
        created_at: r.created_at,
        symptoms: None,
    })
}

/// A [`NewConversation`] body, validated: what [`create`] records.
#[derive(Debug)]
pub struct ConversationEntry {
    pub subject: ClinicalText,
    pub message: ClinicalText,
    /// Name, severity and onset of each symptom.
    pub symptoms: Vec<(String, SymptomSeverity, Option<NaiveDate>)>,
}

impl TryFrom<&NewConversation> for ConversationEntry {
    type Error = ClinicalError;

    fn try_from(input: &NewConversation) -> Result<Self, ClinicalError> {
        let subject = ClinicalText::parse_non_empty(&input.subject).map_err(|e| e.with_field("subject"))?;
        if subject.as_str().chars().count() > 200 {
            return Err(ClinicalError::validation("subject", "must be at most 200 characters"));
        }
        let message = ClinicalText::parse_non_empty(&input.message).map_err(|e| e.with_field("message"))?;
        if input.symptoms.len() > 50 {
            return Err(ClinicalError::validation("symptoms", "at most 50 symptoms"));
        }
        let today = Utc::now().date_naive();
        let mut symptoms = Vec::with_capacity(input.symptoms.len());
        for (i, s) in input.symptoms.iter().enumerate() {
            let name = short_text(&s.name, "name")
                .map_err(|_| ClinicalError::validation(format!("symptoms[{i}].name"), "must be 1–200 characters"))?;
            let sev = SymptomSeverity::new(s.severity).map_err(|e| e.with_field(format!("symptoms[{i}].severity")))?;
            let onset = match s.onset.as_deref() {
                Some(d) => Some(parse_date("onset", d).map_err(|e| e.with_field(format!("symptoms[{i}].onset")))?),
                None => None,
            };
            if onset.is_some_and(|d| d > today) {
                return Err(ClinicalError::validation(format!("symptoms[{i}].onset"), "must not be in the future"));
            }
            symptoms.push((name, sev, onset));
        }
        Ok(Self { subject, message, symptoms })
    }
}

/// Opens a case on a patient's record (the patient themself, or a clinician with access).
pub async fn create(req: &mut Req<'_>, patient: Uuid, entry: ConversationEntry) -> Result<Conversation, ClinicalError> {
    let ConversationEntry { subject, message: body, symptoms } = entry;
    if !matches!(req.user.role, ClaimRole::Patient | ClaimRole::Clinician) {
        return Err(ClinicalError::NotFound);
    }
    require(req, patient, Access::Read).await?;
    let id = Uuid::now_v7();
    req.resource(id);
    let subject_enc = req.seal("conversations", "subject_enc", id, subject.as_str())?;
    let org = req.user.org_id;
    let me = req.user.user_id;
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO conversations (id, org_id, patient_id, subject_enc, opened_by) VALUES ($1, $2, $3, $4, $5) RETURNING {COLS}"
    )))
    .bind(id)
    .bind(org)
    .bind(patient)
    .bind(&subject_enc)
    .bind(me)
    .fetch_one(req.conn().await?)
    .await?;
    insert_message(req, id, patient, body.as_str()).await?;
    let mut out_symptoms = Vec::with_capacity(symptoms.len());
    for (name, sev, onset) in symptoms {
        let sid: Uuid = sqlx::query_scalar(
            "INSERT INTO symptoms (org_id, conversation_id, patient_id, name, severity, onset) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(org)
        .bind(id)
        .bind(patient)
        .bind(&name)
        .bind(i16::from(sev.get()))
        .bind(onset)
        .fetch_one(req.conn().await?)
        .await?;
        out_symptoms.push(Symptom { id: sid, name, severity: i16::from(sev.get()), onset });
    }
    let mut c = open(req, row)?;
    c.symptoms = Some(out_symptoms);
    Ok(c)
}

async fn insert_message(
    req: &mut Req<'_>,
    conversation: Uuid,
    patient: Uuid,
    body: &str,
) -> Result<Message, ClinicalError> {
    let id = Uuid::now_v7();
    let body_enc = req.seal("messages", "body_enc", id, body)?;
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO messages (id, org_id, conversation_id, patient_id, sender_id, body_enc) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at",
    )
    .bind(id)
    .bind(req.user.org_id)
    .bind(conversation)
    .bind(patient)
    .bind(req.user.user_id)
    .bind(&body_enc)
    .fetch_one(req.conn().await?)
    .await?;
    Ok(Message { id, sender_id: req.user.user_id, body: body.to_owned(), created_at })
}

/// A conversation with its symptoms (locked when about to change).
pub async fn get(req: &mut Req<'_>, id: Uuid, lock: bool) -> Result<Conversation, ClinicalError> {
    req.resource(id);
    let sql = format!("SELECT {COLS} FROM conversations WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(req.conn().await?).await?;
    let row = row.ok_or(ClinicalError::NotFound)?;
    req.patient(row.patient_id);
    let mut c = open(req, row)?;
    let symptoms: Vec<(Uuid, String, i16, Option<NaiveDate>)> = sqlx::query_as(
        "SELECT id, name, severity, onset FROM symptoms WHERE conversation_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(req.conn().await?)
    .await?;
    c.symptoms =
        Some(symptoms.into_iter().map(|(id, name, severity, onset)| Symptom { id, name, severity, onset }).collect());
    Ok(c)
}

/// Adds a message. A clinician's reply to a pending case makes it active and assigns them.
/// A [`NewMessage`] body, validated.
#[derive(Debug)]
pub struct MessageEntry {
    pub body: ClinicalText,
}

impl TryFrom<&NewMessage> for MessageEntry {
    type Error = ClinicalError;

    fn try_from(input: &NewMessage) -> Result<Self, ClinicalError> {
        Ok(Self { body: ClinicalText::parse_non_empty(&input.body).map_err(|e| e.with_field("body"))? })
    }
}

pub async fn post_message(
    req: &mut Req<'_>,
    conversation: Uuid,
    input: MessageEntry,
) -> Result<Message, ClinicalError> {
    let MessageEntry { body } = input;
    let c = get(req, conversation, true).await?;
    if c.status == "closed" {
        return Err(ClinicalError::Conflict("the conversation is closed".into()));
    }
    let msg = insert_message(req, conversation, c.patient_id, body.as_str()).await?;
    req.resource(msg.id);
    if req.is(ClaimRole::Clinician) && c.status == "pending" {
        sqlx::query("UPDATE conversations SET status = 'active', assigned_clinician_id = $2 WHERE id = $1")
            .bind(conversation)
            .bind(req.user.user_id)
            .execute(req.conn().await?)
            .await?;
    }
    Ok(msg)
}

pub async fn close(req: &mut Req<'_>, conversation: Uuid) -> Result<Conversation, ClinicalError> {
    let c = get(req, conversation, true).await?;
    if c.status == "closed" {
        return Err(ClinicalError::Conflict("the conversation is already closed".into()));
    }
    sqlx::query("UPDATE conversations SET status = 'closed', closed_at = now() WHERE id = $1")
        .bind(conversation)
        .execute(req.conn().await?)
        .await?;
    get(req, conversation, false).await.map(|mut c| {
        req.ev.resource_ids.dedup();
        c.symptoms = None;
        c
    })
}

pub async fn messages(req: &mut Req<'_>, conversation: Uuid, page: &Page) -> Result<List<Message>, ClinicalError> {
    let _ = get(req, conversation, false).await?;
    let rows: Vec<(Uuid, Uuid, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, sender_id, body_enc, created_at FROM messages WHERE conversation_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
    )
    .bind(conversation)
    .bind(page.after_ts)
    .bind(page.after_id)
    .bind(page.fetch())
    .fetch_all(req.conn().await?)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for (id, sender_id, body_enc, created_at) in rows {
        items.push(Message { id, sender_id, body: req.open("messages", "body_enc", id, &body_enc)?, created_at });
    }
    Ok(page.finish(items, |m| (m.created_at, m.id)))
}

/// Conversations of one patient, or (no patient) every visible one — the clinician's queue
/// with `status=pending` (RLS limits it to their care-team patients).
pub async fn list(
    req: &mut Req<'_>,
    patient: Option<Uuid>,
    status: Option<&str>,
    page: &Page,
) -> Result<List<Conversation>, ClinicalError> {
    let status = match status.map(str::trim) {
        None | Some("") => None,
        Some(s @ ("pending" | "active" | "closed")) => Some(s.to_owned()),
        Some(_) => return Err(ClinicalError::validation("status", "must be one of: pending, active, closed")),
    };
    if let Some(p) = patient {
        require(req, p, Access::Read).await?;
    } else if !matches!(req.user.role, ClaimRole::Patient | ClaimRole::Clinician) {
        return Err(ClinicalError::NotFound);
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM conversations WHERE ($1::uuid IS NULL OR patient_id = $1) \
         AND ($2::conversation_status IS NULL OR status = $2::conversation_status) \
         AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4)) ORDER BY created_at, id LIMIT $5"
    )))
    .bind(patient)
    .bind(status)
    .bind(page.after_ts)
    .bind(page.after_id)
    .bind(page.fetch())
    .fetch_all(req.conn().await?)
    .await?;
    let items = rows.into_iter().map(|r| open(req, r)).collect::<Result<Vec<_>, _>>()?;
    let list = page.finish(items, |c| (c.created_at, c.id));
    req.listed(list.items.iter().map(|c| (c.id, c.patient_id)));
    Ok(list)
}
