//! `/v1/patients/{id}/care-team` (admins) and `/v1/patients/{id}/break-glass` (clinicians).

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
    responses((status = 201, body = care::BreakGlassGrant), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn break_glass(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<care::BreakGlassRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::BreakGlass, "break_glass_grant", async |r| {
        care::break_glass(r, id, &body).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}
