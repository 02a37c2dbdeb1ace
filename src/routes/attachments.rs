//! Attachments: upload as a raw body (`Content-Type` + `?filename=`) or as
//! `multipart/form-data` (one part named `file`, its own filename and type), metadata list,
//! download with the checksum re-checked and returned in `X-Checksum-SHA256`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use serde::Deserialize;
use uuid::Uuid;

use super::clinical::{audited, audited_for};
use super::openapi::ErrorBody;
use crate::audit::Action;
use crate::clinical::attachments as att;
use crate::clinical::page::{List, Page, PageQuery};
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::state::AppState;

type S = web::Data<AppState>;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    pub filename: Option<String>,
}

/// Checks type and name, then reads the body up to the configured limit (413 beyond it,
/// without reading the rest when Content-Length already says so).
async fn read_upload(
    state: &AppState,
    req: &HttpRequest,
    q: &UploadQuery,
    mut body: web::Payload,
) -> Result<(String, String, Vec<u8>), ApiError> {
    let header_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let max = state.settings.clinical.attachment_max_bytes;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if header_type.is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("multipart/form-data")) {
        // The multipart framing adds a few hundred bytes around the file itself.
        if declared.is_some_and(|n| n > max.saturating_add(MULTIPART_OVERHEAD)) {
            return Err(ApiError::PayloadTooLarge);
        }
        return read_multipart(req, q, body, max).await;
    }
    let ctype = att::content_type(header_type)?;
    let name = att::filename(q.filename.as_deref())?;
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(max));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((ctype, name, bytes))
}

/// Room for boundaries and part headers on top of the file limit.
const MULTIPART_OVERHEAD: usize = 16 * 1024;

/// `multipart/form-data` with one part named `file`: its type must be on the allow-list, its
/// filename (or `?filename=`, which wins) names the attachment; other parts are refused.
async fn read_multipart(
    req: &HttpRequest,
    q: &UploadQuery,
    body: web::Payload,
    max: usize,
) -> Result<(String, String, Vec<u8>), ApiError> {
    let malformed = || ApiError::BadRequest("malformed multipart body".into());
    let mut form = actix_multipart::Multipart::new(req.headers(), body);
    let mut file: Option<(String, String, Vec<u8>)> = None;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|_| malformed())?;
        if part.name() != Some("file") || file.is_some() {
            return Err(ApiError::validation("file", "send exactly one part, named file"));
        }
        let ctype = att::content_type(part.content_type().map(|m| m.essence_str()))?;
        let part_name = part.content_disposition().and_then(|d| d.get_filename()).map(str::to_owned);
        let name = att::filename(q.filename.as_deref().or(part_name.as_deref()))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| malformed())?;
            if bytes.len() + chunk.len() > max {
                return Err(ApiError::PayloadTooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        file = Some((ctype, name, bytes));
    }
    file.ok_or_else(|| ApiError::validation("file", "send exactly one part, named file"))
}

#[utoipa::path(post, path = "/v1/patients/{id}/attachments", tag = "attachments", params(("id" = Uuid, Path), UploadQuery),
    request_body(description = "the raw file with its Content-Type from the allow-list, or multipart/form-data with one part named `file`",
        content((Vec<u8> = "application/pdf"), (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/gif"),
            (Vec<u8> = "image/webp"), (String = "text/plain"), (Object = "multipart/form-data"))),
    responses((status = 201, body = att::Attachment), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload_to_patient(
    state: S,
    user: Caller,
    req: HttpRequest,
    id: web::Path<Uuid>,
    q: web::Query<UploadQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The session first: a body is read (up to the size limit) only for a live one.
    user.admit(&state).await?;
    let (ctype, name, bytes) = read_upload(&state, &req, &q, body).await?;
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Create, "attachment", async |r| {
        att::create(r, Some(id), None, &name, &ctype, &bytes).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/attachments", tag = "attachments", params(("id" = Uuid, Path), UploadQuery),
    request_body(description = "the raw file with its Content-Type from the allow-list, or multipart/form-data with one part named `file`",
        content((Vec<u8> = "application/pdf"), (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/gif"),
            (Vec<u8> = "image/webp"), (String = "text/plain"), (Object = "multipart/form-data"))),
    responses((status = 201, body = att::Attachment), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn upload_to_conversation(
    state: S,
    user: Caller,
    req: HttpRequest,
    id: web::Path<Uuid>,
    q: web::Query<UploadQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The session first: a body is read (up to the size limit) only for a live one.
    user.admit(&state).await?;
    let (ctype, name, bytes) = read_upload(&state, &req, &q, body).await?;
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Create, "attachment", async |r| {
        att::create(r, None, Some(id), &name, &ctype, &bytes).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(get, path = "/v1/patients/{id}/attachments", tag = "attachments", operation_id = "list_attachments", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = List<att::Attachment>), (status = 404, body = ErrorBody)))]
pub async fn list(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, page) = (id.into_inner(), Page::parse(&q)?);
    let out =
        audited_for(&state, &user, id, Action::Read, "attachment", async |r| att::list(r, id, &page).await).await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(get, path = "/v1/attachments/{id}", tag = "attachments", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the file, with its stored type; `X-Checksum-SHA256` carries its verified SHA-256",
            content((Vec<u8> = "application/pdf"), (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/gif"),
                (Vec<u8> = "image/webp"), (String = "text/plain"))),
        (status = 404, body = ErrorBody)))]
pub async fn download(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let file = audited(&state, &user, Action::Read, "attachment", async |r| att::download(r, id).await).await?;
    // The stored name is only offered as a hint, ASCII-safe, never trusted as a path.
    let safe: String =
        file.filename.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header(("X-Checksum-SHA256", file.sha256))
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{safe}\"")))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-store"))
        .body(file.bytes))
}
