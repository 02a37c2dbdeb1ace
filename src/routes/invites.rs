//! `POST /v1/patients/{id}/invite`: a single-use portal invite for an existing patient record,
//! its code sent to the patient's email on file (never shown to the issuer).

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use crate::auth::{AuthUser, invites};
use crate::error::ApiError;
use crate::routes::openapi::ErrorBody;
use crate::state::AppState;

/// `POST /v1/patients/{id}/invite`.
#[utoipa::path(post, path = "/v1/patients/{id}/invite", tag = "patients", params(("id" = Uuid, Path)),
    responses((status = 201, body = invites::Invite, description = "the invite was issued and its code handed to the outbox for the patient's email on file; the answer holds no code"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the patient already has an account"),
        (status = 422, body = ErrorBody, description = "the patient has no email address on file (field `email`)")))]
pub async fn issue(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(invites::issue(&state, &user, path.into_inner()).await?))
}
