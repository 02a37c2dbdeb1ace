//! `/v1/me*`: the signed-in user's own account, sessions and second factor.
//! `/v1/me`, `/v1/me/password` and the MFA enrolment endpoints also serve restricted
//! sessions (see `middleware::caller`).

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{AnySessionUser, AuthUser, EnrollingUser, account, mfa};
use crate::error::ApiError;
use crate::routes::openapi::ErrorBody;
use crate::state::AppState;

/// `GET /v1/me`.
#[utoipa::path(get, path = "/v1/me", tag = "me", responses((status = 200, body = account::Me)))]
pub async fn me(state: web::Data<AppState>, user: AnySessionUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(account::me(&state, &user.0).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordBody {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// `POST /v1/me/password`.
#[utoipa::path(post, path = "/v1/me/password", tag = "me", request_body = PasswordBody,
    responses((status = 204, description = "changed; other sessions are revoked"), (status = 401, body = ErrorBody, description = "wrong current password"),
        (status = 422, body = ErrorBody, description = "the new password breaks the password rules"), (status = 429, body = ErrorBody)))]
pub async fn change_password(
    state: web::Data<AppState>,
    user: AnySessionUser,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let PasswordBody { current_password, new_password } = body.into_inner();
    account::change_password(&state, &user.0, current_password, new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{"sessions": [...]}`: the caller's live sessions, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Sessions {
    pub sessions: Vec<account::SessionInfo>,
}

/// `GET /v1/me/sessions`.
#[utoipa::path(get, path = "/v1/me/sessions", tag = "me", responses((status = 200, body = Sessions)))]
pub async fn sessions(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(Sessions { sessions: account::list_sessions(&state, &user).await? }))
}

/// `DELETE /v1/me/sessions/{id}`.
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "me", params(("id" = Uuid, Path, description = "one of the caller's sessions")),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke_session(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    account::revoke_own_session(&state, &user, path.into_inner(), "revoked by user").await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/me/mfa/enroll`.
#[utoipa::path(post, path = "/v1/me/mfa/enroll", tag = "me",
    responses((status = 200, body = mfa::Enrolment, description = "the TOTP secret, shown once"), (status = 409, body = ErrorBody, description = "MFA already enabled"), (status = 429, body = ErrorBody)))]
pub async fn mfa_enroll(state: web::Data<AppState>, user: EnrollingUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(mfa::enroll(&state, &user.0).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeBody {
    code: String,
}

/// `POST /v1/me/mfa/confirm`.
#[utoipa::path(post, path = "/v1/me/mfa/confirm", tag = "me", request_body = CodeBody,
    responses((status = 200, body = mfa::RecoveryCodes, description = "MFA enabled; recovery codes shown once"), (status = 401, body = ErrorBody, description = "wrong code"),
        (status = 409, body = ErrorBody, description = "no enrolment under way, or MFA already enabled"), (status = 429, body = ErrorBody)))]
pub async fn mfa_confirm(
    state: web::Data<AppState>,
    user: EnrollingUser,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(mfa::confirm(&state, &user.0, &body.code).await?))
}

/// `POST /v1/me/mfa/recovery-codes {code}`: a new set of recovery codes (TOTP step-up).
#[utoipa::path(post, path = "/v1/me/mfa/recovery-codes", tag = "me", request_body = CodeBody,
    responses((status = 200, body = mfa::RecoveryCodes), (status = 401, body = ErrorBody, description = "wrong code"),
        (status = 409, body = ErrorBody, description = "MFA not enabled"), (status = 429, body = ErrorBody)))]
pub async fn recovery_codes(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(mfa::regenerate(&state, &user, &body.code).await?))
}
