//! Medical history: ICD-10-CM coded diagnoses (code plain and format-checked, notes sealed).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ClinicalError;
use super::page::{List, Page};
use super::{Req, new_entry, section};
use crate::domain::{ClinicalText, Icd10Code, parse_date};

const T: &str = "medical_history";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewDiagnosis {
    /// ICD-10-CM, e.g. `E11.9`, `I10`, `S52.521A`.
    pub icd10_code: String,
    pub description: Option<String>,
    pub diagnosed_on: String,
    pub resolved_on: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Diagnosis {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub icd10_code: String,
    pub description: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub diagnosed_on: NaiveDate,
    #[schema(value_type = Option<String>, format = Date)]
    pub resolved_on: Option<NaiveDate>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    patient_id: Uuid,
    icd10_code: String,
    description: Option<String>,
    diagnosed_on: NaiveDate,
    resolved_on: Option<NaiveDate>,
    notes_enc: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
}

const COLS: &str = "id, patient_id, icd10_code, description, diagnosed_on, resolved_on, notes_enc, created_at";

fn open(req: &Req<'_>, r: Row) -> Result<Diagnosis, ClinicalError> {
    Ok(Diagnosis {
        notes: req.open_opt(T, "notes_enc", r.id, r.notes_enc.as_deref())?,
        id: r.id,
        patient_id: r.patient_id,
        icd10_code: r.icd10_code,
        description: r.description,
        diagnosed_on: r.diagnosed_on,
        resolved_on: r.resolved_on,
        created_at: r.created_at,
    })
}

/// A [`NewDiagnosis`] body, validated: what [`create`] records.
#[derive(Debug)]
pub struct DiagnosisEntry {
    pub code: Icd10Code,
    pub description: Option<String>,
    pub diagnosed: NaiveDate,
    pub resolved: Option<NaiveDate>,
    pub notes: Option<ClinicalText>,
}

impl TryFrom<&NewDiagnosis> for DiagnosisEntry {
    type Error = ClinicalError;

    fn try_from(input: &NewDiagnosis) -> Result<Self, ClinicalError> {
        let code = Icd10Code::parse(&input.icd10_code)?;
        let description = match input.description.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) if d.chars().count() > 500 => {
                return Err(ClinicalError::validation("description", "must be at most 500 characters"));
            }
            Some(d) if d.contains('\0') => {
                return Err(ClinicalError::validation("description", "must not contain NUL characters"));
            }
            Some(d) => Some(d.to_owned()),
        };
        let diagnosed = parse_date("diagnosed_on", &input.diagnosed_on)?;
        if diagnosed > Utc::now().date_naive() {
            return Err(ClinicalError::validation("diagnosed_on", "must not be in the future"));
        }
        let resolved = input.resolved_on.as_deref().map(|d| parse_date("resolved_on", d)).transpose()?;
        if resolved.is_some_and(|r| r < diagnosed) {
            return Err(ClinicalError::validation("resolved_on", "must not be before diagnosed_on"));
        }
        let notes = input.notes.as_deref().map(ClinicalText::parse).transpose().map_err(|e| e.with_field("notes"))?;
        Ok(Self { code, description, diagnosed, resolved, notes })
    }
}

pub async fn create(req: &mut Req<'_>, patient: Uuid, entry: DiagnosisEntry) -> Result<Diagnosis, ClinicalError> {
    let DiagnosisEntry { code, description, diagnosed, resolved, notes } = entry;
    let id = new_entry(req, patient).await?;
    let notes_enc = req.seal_opt(T, "notes_enc", id, notes.as_ref().map(|n| n.as_str()))?;
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO medical_history (id, org_id, patient_id, icd10_code, description, diagnosed_on, resolved_on, \
         notes_enc, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLS}"
    )))
    .bind(id)
    .bind(req.user.org_id)
    .bind(patient)
    .bind(code.as_str())
    .bind(&description)
    .bind(diagnosed)
    .bind(resolved)
    .bind(&notes_enc)
    .bind(req.user.user_id)
    .fetch_one(req.conn().await?)
    .await?;
    open(req, row)
}

pub async fn list(req: &mut Req<'_>, patient: Uuid, page: &Page) -> Result<List<Diagnosis>, ClinicalError> {
    section::list::<History>(req, patient, page, false).await
}

/// The history section of a chart ([`section::Section`]).
pub(crate) struct History;

impl section::Section for History {
    type Row = Row;
    type Item = Diagnosis;
    const TABLE: &'static str = "medical_history";
    const COLS: &'static str = COLS;
    const ACTIVE: &'static str = "true";

    fn open(req: &Req<'_>, row: Row) -> Result<Diagnosis, ClinicalError> {
        open(req, row)
    }

    fn key(d: &Diagnosis) -> (DateTime<Utc>, Uuid) {
        (d.created_at, d.id)
    }
}
