//! Attachments: a raw body with its `Content-Type` (allow-list) and a `filename`, at most
//! `CUSTOS_ATTACHMENT_MAX_BYTES`. The SHA-256 of the plaintext is stored in the clear and
//! re-checked after decryption on every download; file name and contents are sealed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::ClinicalError;
use super::page::{List, Page};
use super::{Access, Req, require};
use crate::db::ClaimRole;
use crate::domain::{DomainError, Rule};

const T: &str = "attachments";

/// Content types accepted for upload.
pub const ALLOWED_TYPES: &[&str] =
    &["application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the contents.
    pub sha256: String,
    pub uploaded_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A downloaded file. (Serializable like every clinical answer, so that `Req` can store any
/// answer under an Idempotency-Key; downloads are GETs and never are.)
#[derive(serde::Serialize)]
pub struct Download {
    pub filename: String,
    pub content_type: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    patient_id: Uuid,
    conversation_id: Option<Uuid>,
    filename_enc: Vec<u8>,
    content_type: String,
    size_bytes: i64,
    sha256: Vec<u8>,
    uploaded_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

const COLS: &str =
    "id, patient_id, conversation_id, filename_enc, content_type, size_bytes, sha256, uploaded_by, created_at";

fn open(req: &Req<'_>, r: Row) -> Result<Attachment, ClinicalError> {
    Ok(Attachment {
        filename: req.open(T, "filename_enc", r.id, &r.filename_enc)?,
        id: r.id,
        patient_id: r.patient_id,
        conversation_id: r.conversation_id,
        content_type: r.content_type,
        size_bytes: r.size_bytes,
        sha256: hex::encode(&r.sha256),
        uploaded_by: r.uploaded_by,
        created_at: r.created_at,
    })
}

/// The media type without parameters, lower-cased, if it is on the allow-list.
pub fn content_type(header: Option<&str>) -> Result<String, ClinicalError> {
    let raw = header.ok_or_else(|| ClinicalError::UnsupportedMediaType("a Content-Type header is required".into()))?;
    let essence = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if ALLOWED_TYPES.contains(&essence.as_str()) {
        Ok(essence)
    } else {
        Err(ClinicalError::UnsupportedMediaType(format!("Content-Type must be one of: {}", ALLOWED_TYPES.join(", "))))
    }
}

/// A file name: 1–255 characters, no path separators or control characters.
pub fn filename(raw: Option<&str>) -> Result<String, ClinicalError> {
    let t = raw.map(str::trim).unwrap_or("");
    let err = |rule| ClinicalError::from(DomainError::new("filename", rule));
    if t.is_empty() {
        return Err(err(Rule::Empty));
    }
    if t.chars().count() > 255 {
        return Err(err(Rule::TooLong { max: 255 }));
    }
    if t.chars().any(|c| c.is_control() || c == '/' || c == '\\') || t == "." || t == ".." {
        return Err(err(Rule::Format { expected: "a file name without path separators or control characters" }));
    }
    Ok(t.to_owned())
}

/// Stores an upload on a patient (and optionally one of their conversations).
pub async fn create(
    req: &mut Req<'_>,
    patient: Option<Uuid>,
    conversation: Option<Uuid>,
    name: &str,
    ctype: &str,
    bytes: &[u8],
) -> Result<Attachment, ClinicalError> {
    if !matches!(req.user.role, ClaimRole::Patient | ClaimRole::Clinician) {
        return Err(ClinicalError::NotFound);
    }
    let patient = match (patient, conversation) {
        (Some(p), _) => p,
        (None, Some(c)) => {
            let conv = super::conversations::get(req, c, false).await?;
            req.ev.resource_ids.clear();
            conv.patient_id
        }
        (None, None) => return Err(ClinicalError::NotFound),
    };
    require(req, patient, Access::Read).await?;
    let id = Uuid::now_v7();
    req.resource(id);
    let digest = Sha256::digest(bytes);
    let filename_enc = req.seal(T, "filename_enc", id, name)?;
    let content_enc = req.seal_bytes(T, "content_enc", id, bytes)?;
    let size = i64::try_from(bytes.len()).map_err(|_| ClinicalError::PayloadTooLarge)?;
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO attachments (id, org_id, patient_id, conversation_id, uploaded_by, filename_enc, content_type, \
         size_bytes, sha256, content_enc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLS}"
    )))
    .bind(id)
    .bind(req.user.org_id)
    .bind(patient)
    .bind(conversation)
    .bind(req.user.user_id)
    .bind(&filename_enc)
    .bind(ctype)
    .bind(size)
    .bind(&digest[..])
    .bind(&content_enc)
    .fetch_one(req.conn().await?)
    .await?;
    open(req, row)
}

pub async fn list(req: &mut Req<'_>, patient: Uuid, page: &Page) -> Result<List<Attachment>, ClinicalError> {
    require(req, patient, Access::Read).await?;
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM attachments WHERE patient_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4"
    )))
    .bind(patient)
    .bind(page.after_ts)
    .bind(page.after_id)
    .bind(page.fetch())
    .fetch_all(req.conn().await?)
    .await?;
    let items = rows.into_iter().map(|r| open(req, r)).collect::<Result<Vec<_>, _>>()?;
    Ok(page.finish(items, |a| (a.created_at, a.id)))
}

/// Decrypts and re-checks a file; a checksum mismatch is an integrity error, never served.
pub async fn download(req: &mut Req<'_>, id: Uuid) -> Result<Download, ClinicalError> {
    req.resource(id);
    type Stored = (Uuid, Vec<u8>, String, Vec<u8>, Vec<u8>);
    let row: Option<Stored> = sqlx::query_as(
        "SELECT patient_id, filename_enc, content_type, sha256, content_enc FROM attachments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(req.conn().await?)
    .await?;
    let (patient, filename_enc, content_type, sha, content_enc) = row.ok_or(ClinicalError::NotFound)?;
    req.patient(patient);
    let filename = req.open(T, "filename_enc", id, &filename_enc)?;
    let bytes = req.open_bytes(T, "content_enc", id, &content_enc)?;
    if Sha256::digest(&bytes)[..] != sha[..] {
        return Err(ClinicalError::Integrity { location: format!("{T}.sha256") });
    }
    Ok(Download { filename, content_type, sha256: hex::encode(&sha), bytes })
}
