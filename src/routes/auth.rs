//! `/v1/auth/*`: sign-in, second factor, token refresh, logout, patient registration.
//! Rate-limited per client IP (see `middleware::rate_limit`).

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::auth::{AnySessionUser, RequestMeta, account, invites, login, sessions};
use crate::error::ApiError;
use crate::routes::openapi::ErrorBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    /// The organization (name or id); needed only when the email has accounts in several.
    #[serde(default)]
    organization: Option<String>,
}

/// `POST /v1/auth/login`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", security(()), request_body = LoginBody,
    responses((status = 200, body = login::LoginOutcome, description = "signed in (tokens), or a second factor is required (`mfa_token`)"),
        (status = 401, body = ErrorBody, description = "wrong email or password, or the account is locked or disabled"),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let LoginBody { email, password, organization } = body.into_inner();
    Ok(HttpResponse::Ok().json(login::login_in(&state, &meta, &email, organization.as_deref(), password).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MfaBody {
    mfa_token: String,
    /// A TOTP code or a recovery code.
    code: String,
}

/// `POST /v1/auth/mfa/verify`.
#[utoipa::path(post, path = "/v1/auth/mfa/verify", tag = "auth", security(()), request_body = MfaBody,
    responses((status = 200, body = sessions::TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn mfa_verify(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<MfaBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(login::verify_mfa(&state, &meta, &body.mfa_token, &body.code).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    refresh_token: String,
}

/// `POST /v1/auth/refresh`: rotates the refresh token; presenting a used one revokes the session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", security(()), request_body = RefreshBody,
    responses((status = 200, body = sessions::TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn refresh(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(sessions::refresh(&state, &meta, &body.refresh_token).await?))
}

/// `POST /v1/auth/logout`: revokes the caller's session; its access tokens stop working.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", responses((status = 204, description = "signed out"), (status = 429, body = ErrorBody)))]
pub async fn logout(state: web::Data<AppState>, user: AnySessionUser) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    account::revoke_own_session(&state, &user, user.session_id, "logout").await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    invite_code: String,
    /// The patient's date of birth (`YYYY-MM-DD`), checked against the record.
    birth_date: String,
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// `{"user_id"}` of a newly registered patient account.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Registered {
    pub user_id: uuid::Uuid,
}

/// `POST /v1/auth/register`: a patient redeems an invite.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", security(()), request_body = RegisterBody,
    responses((status = 201, body = Registered), (status = 401, body = ErrorBody, description = "unknown, used or expired invite, or the birth date does not match"),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let RegisterBody { invite_code, birth_date, email, password } = body.into_inner();
    let user_id = invites::register(&state, &meta, &invite_code, &email, &birth_date, password).await?;
    Ok(HttpResponse::Created().json(Registered { user_id }))
}
