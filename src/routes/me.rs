//! `/v1/me*`: the signed-in user's own account, sessions and second factor.
//! `/v1/me`, `/v1/me/password` and the MFA enrolment endpoints also serve restricted
//! sessions (see `middleware::caller`).

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{AnySessionUser, AuthUser, EnrollingUser, account, mfa};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/me`.
pub async fn me(state: web::Data<AppState>, user: AnySessionUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(account::me(&state, &user.0).await?))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    current_password: SecretString,
    new_password: SecretString,
}

/// `POST /v1/me/password`.
pub async fn change_password(
    state: web::Data<AppState>,
    user: AnySessionUser,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let PasswordBody { current_password, new_password } = body.into_inner();
    account::change_password(&state, &user.0, current_password, new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /v1/me/sessions`.
pub async fn sessions(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sessions": account::list_sessions(&state, &user).await? })))
}

/// `DELETE /v1/me/sessions/{id}`.
pub async fn revoke_session(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    account::revoke_own_session(&state, &user, path.into_inner(), "revoked by user").await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/me/mfa/enroll`.
pub async fn mfa_enroll(state: web::Data<AppState>, user: EnrollingUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(mfa::enroll(&state, &user.0).await?))
}

#[derive(Deserialize)]
pub struct CodeBody {
    code: String,
}

/// `POST /v1/me/mfa/confirm`.
pub async fn mfa_confirm(
    state: web::Data<AppState>,
    user: EnrollingUser,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(mfa::confirm(&state, &user.0, &body.code).await?))
}

/// `POST /v1/me/mfa/recovery-codes {code}`: a new set of recovery codes (TOTP step-up).
pub async fn recovery_codes(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(mfa::regenerate(&state, &user, &body.code).await?))
}
