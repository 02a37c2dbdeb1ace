//! `/v1/patients/{id}/care-team` (admins), `/v1/patients/{id}/break-glass` (clinicians) and
//! `/v1/break-glass/{id}/reason` (auditors and admins read a sealed reason, audited) and
//! `/v1/break-glass/allowances` (admins lift a clinician's daily limit).

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::clinical::audited;
use super::openapi::ErrorBody;
use crate::audit::Action;
use crate::clinical::care;
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::state::AppState;

type S = web::Data<AppState>;

#[utoipa::path(get, path = "/v1/patients/{id}/care-team", tag = "care team", operation_id = "list_care_team", params(("id" = Uuid, Path)),
    responses((status = 200, body = crate::clinical::page::List<care::CareTeamMember>, description = "the whole team on one page (`next_cursor` is null)"), (status = 404, body = ErrorBody)))]
pub async fn list(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Read, "care_team", async |r| care::list(r, id).await).await?;
    Ok(HttpResponse::Ok().json(crate::clinical::page::List { items: out, next_cursor: None }))
}

#[utoipa::path(post, path = "/v1/patients/{id}/care-team", tag = "care team", params(("id" = Uuid, Path)), request_body = care::CareTeamChange,
    responses((status = 201, body = care::CareTeamMember), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<care::CareTeamChange>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Admin, "care_team", async |r| care::add(r, id, &body).await).await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(delete, path = "/v1/patients/{id}/care-team", tag = "care team", params(("id" = Uuid, Path)), request_body = care::CareTeamChange,
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_by_body(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<care::CareTeamChange>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    audited(&state, &user, Action::Admin, "care_team", async |r| care::remove(r, id, body.clinician_id).await).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/v1/patients/{id}/care-team/{clinician_id}", tag = "care team",
    params(("id" = Uuid, Path), ("clinician_id" = Uuid, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove(state: S, user: Caller, path: web::Path<(Uuid, Uuid)>) -> Result<HttpResponse, ApiError> {
    let (id, clinician) = path.into_inner();
    audited(&state, &user, Action::Admin, "care_team", async |r| care::remove(r, id, clinician).await).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/v1/patients/{id}/break-glass", tag = "care team", params(("id" = Uuid, Path)), request_body = care::BreakGlassRequest,
    description = "One live grant per clinician and patient (asking again renews it); at most `CUSTOS_BREAK_GLASS_DAILY_LIMIT` patients per clinician in 24 hours (403 `break_glass_daily_limit`). The reason is sealed; the ledger carries an HMAC commitment to it.",
    responses((status = 201, body = care::BreakGlassGrant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn break_glass(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<care::BreakGlassRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::BreakGlass, "break_glass_grant", async |r| {
        care::break_glass(r, id, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(get, path = "/v1/break-glass/{id}/reason", tag = "care team", params(("id" = Uuid, Path, description = "the grant")),
    description = "Auditors and admins of the organization read a break-glass reason (sealed at rest), with the ledger's commitment to it and whether the text still matches it. Every read is recorded.",
    responses((status = 200, body = care::BreakGlassReason), (status = 404, body = ErrorBody)))]
pub async fn reason(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out =
        audited(&state, &user, Action::Read, "break_glass_reason", async |r| care::grant_reason(r, id).await).await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/break-glass/allowances", tag = "care team", request_body = care::AllowanceRequest,
    description = "An admin lifts a clinician's break-glass daily limit (`CUSTOS_BREAK_GLASS_DAILY_LIMIT`) by `extra` patients for the next 24 hours. Recorded.",
    responses((status = 201, body = care::Allowance), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn lift_limit(
    state: S,
    user: Caller,
    body: web::Json<care::AllowanceRequest>,
) -> Result<HttpResponse, ApiError> {
    let out =
        audited(&state, &user, Action::Admin, "break_glass_allowance", async |r| care::lift_limit(r, &body).await)
            .await?;
    Ok(HttpResponse::Created().json(out))
}
