//! `POST /v1/patients/{id}/invite`: a single-use portal invite for an existing patient record.

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use crate::auth::{AuthUser, invites};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn issue(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(invites::issue(&state, &user, path.into_inner()).await?))
}
