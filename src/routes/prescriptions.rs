//! `/v1/patients/{id}/prescriptions` and `/v1/prescriptions/{id}[.pdf|/refill|/cancel]`.

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::clinical::{audited, audited_for};
use super::openapi::ErrorBody;
use crate::audit::Action;
use crate::clinical::page::{List, Page, PageQuery};
use crate::clinical::prescriptions as rx;
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::state::AppState;

type S = web::Data<AppState>;

#[utoipa::path(get, path = "/v1/patients/{id}/prescriptions", tag = "prescriptions", operation_id = "list_prescriptions", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = List<rx::Prescription>), (status = 404, body = ErrorBody)))]
pub async fn list(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, page) = (id.into_inner(), Page::parse(&q)?);
    let out = audited_for(&state, &user, id, Action::Read, "prescription", async |r| {
        crate::clinical::require(r, id, crate::clinical::Access::Read).await?;
        rx::list(r, id, &page, false).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/patients/{id}/prescriptions", tag = "prescriptions", operation_id = "create_prescription", params(("id" = Uuid, Path)), request_body = rx::NewPrescription,
    responses((status = 201, body = rx::Prescription), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<rx::NewPrescription>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out =
        audited(&state, &user, Action::Create, "prescription", async |r| rx::create(r, id, (&*body).try_into()?).await)
            .await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(get, path = "/v1/prescriptions/{id}", tag = "prescriptions", operation_id = "get_prescription", params(("id" = Uuid, Path)),
    responses((status = 200, body = rx::Prescription), (status = 404, body = ErrorBody)))]
pub async fn get(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Read, "prescription", async |r| rx::get(r, id).await).await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/prescriptions/{id}/refill", tag = "prescriptions", params(("id" = Uuid, Path)),
    responses((status = 200, body = rx::Prescription), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not active, expired, or no refills remain (the message says which)")))]
pub async fn refill(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Update, "prescription", async |r| rx::refill(r, id).await).await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/prescriptions/{id}/cancel", tag = "prescriptions", params(("id" = Uuid, Path)), request_body = rx::CancelPrescription,
    responses((status = 200, body = rx::Prescription), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn cancel(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<rx::CancelPrescription>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out =
        audited(&state, &user, Action::Update, "prescription", async |r| rx::cancel(r, id, (&*body).try_into()?).await)
            .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// The printable prescription, audited as an export.
#[utoipa::path(get, path = "/v1/prescriptions/{id}.pdf", tag = "prescriptions", operation_id = "prescription_pdf", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>, description = "PDF; `X-Checksum-SHA256` is the checksum printed on it"),
        (status = 404, body = ErrorBody)))]
pub async fn pdf(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (bytes, checksum) =
        audited(&state, &user, Action::Export, "prescription_pdf", async |r| rx::pdf(r, id).await).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"prescription-{id}.pdf\"")))
        .insert_header(("X-Checksum-SHA256", checksum))
        .insert_header(("Cache-Control", "no-store"))
        .body(bytes))
}
