//! `/v1/auth/*`: sign-in, second factor, token refresh, logout, patient registration.
//! Rate-limited per client IP (see `auth::rate_limit`).

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{AnySessionUser, RequestMeta, account, invites, login, sessions};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: SecretString,
    /// The organization (name or id); needed only when the email has accounts in several.
    #[serde(default)]
    organization: Option<String>,
}

/// `POST /v1/auth/login`.
pub async fn login(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let LoginBody { email, password, organization } = body.into_inner();
    Ok(HttpResponse::Ok().json(login::login_in(&state, &meta, &email, organization.as_deref(), password).await?))
}

#[derive(Deserialize)]
pub struct MfaBody {
    mfa_token: String,
    code: String,
}

/// `POST /v1/auth/mfa/verify`.
pub async fn mfa_verify(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<MfaBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(login::verify_mfa(&state, &meta, &body.mfa_token, &body.code).await?))
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

/// `POST /v1/auth/refresh`.
pub async fn refresh(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(sessions::refresh(&state, &meta, &body.refresh_token).await?))
}

/// `POST /v1/auth/logout`: revokes the caller's session; its access tokens stop working.
pub async fn logout(state: web::Data<AppState>, user: AnySessionUser) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    account::revoke_own_session(&state, &user, user.session_id, "logout").await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct RegisterBody {
    invite_code: String,
    /// The patient's date of birth (`YYYY-MM-DD`), checked against the record.
    birth_date: String,
    email: String,
    password: SecretString,
}

/// `POST /v1/auth/register`: a patient redeems an invite.
pub async fn register(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let RegisterBody { invite_code, birth_date, email, password } = body.into_inner();
    let user_id = invites::register(&state, &meta, &invite_code, &email, &birth_date, password).await?;
    Ok(HttpResponse::Created().json(json!({ "user_id": user_id })))
}
