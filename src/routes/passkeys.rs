//! Passkeys over HTTP: `/v1/me/passkeys*` (register, list, delete), `/v1/auth/passkey/*`
//! (sign-in: second factor and passwordless) and `/v1/admin/auth-policy` (the organization's
//! sign-in policies). The services are `auth::passkeys` and `auth::passkey_login`.

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::openapi::ErrorBody;
use crate::auth::passkeys::AuthPolicy;
use crate::auth::{AuthUser, EnrollingUser, RequestMeta, passkey_login, passkeys};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RegisterStartBody {
    password: SecretString,
    label: String,
}

/// `POST /v1/me/passkeys/register/start`.
#[utoipa::path(post, path = "/v1/me/passkeys/register/start", tag = "me",
    request_body(content = serde_json::Value, description = "`{password, label}`: the account password again (re-authentication) and a name for the passkey"),
    responses((status = 200, body = CeremonyStarted, description = "`options` is the `publicKey` argument of `navigator.credentials.create`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn register_start(
    state: web::Data<AppState>,
    user: EnrollingUser,
    body: web::Json<RegisterStartBody>,
) -> Result<HttpResponse, ApiError> {
    let RegisterStartBody { password, label } = body.into_inner();
    Ok(HttpResponse::Ok().json(passkeys::register_start(&state, &user.0, password, &label).await?))
}

#[derive(Deserialize)]
pub struct RegisterFinishBody {
    ceremony_token: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /v1/me/passkeys/register/finish`.
#[utoipa::path(post, path = "/v1/me/passkeys/register/finish", tag = "me",
    request_body(content = serde_json::Value, description = "`{ceremony_token, credential}`: the authenticator's answer (`PublicKeyCredential` as JSON)"),
    responses((status = 201, body = passkeys::PasskeyInfo, description = "the passkey (no key material)"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register_finish(
    state: web::Data<AppState>,
    user: EnrollingUser,
    body: web::Json<RegisterFinishBody>,
) -> Result<HttpResponse, ApiError> {
    let info = passkeys::register_finish(&state, &user.0, &body.ceremony_token, &body.credential).await?;
    Ok(HttpResponse::Created().json(info))
}

/// `GET /v1/me/passkeys`.
#[utoipa::path(get, path = "/v1/me/passkeys", tag = "me",
    responses((status = 200, body = PasskeyList, description = "the caller's passkeys (no key material)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(PasskeyList { passkeys: passkeys::list(&state, &user).await? }))
}

/// `DELETE /v1/me/passkeys/{id}`.
#[utoipa::path(delete, path = "/v1/me/passkeys/{id}", tag = "me", params(("id" = Uuid, Path, description = "passkey id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    passkeys::delete(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct SecondFactorStartBody {
    mfa_token: String,
}

/// `POST /v1/auth/passkey/start`.
#[utoipa::path(post, path = "/v1/auth/passkey/start", tag = "auth", security(()),
    request_body(content = serde_json::Value, description = "`{mfa_token}` from the password step"),
    responses((status = 200, body = CeremonyStarted, description = "`options` is the `publicKey` argument of `navigator.credentials.get`"),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn second_factor_start(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<SecondFactorStartBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(passkey_login::second_factor_start(&state, &meta, &body.mfa_token).await?))
}

#[derive(Deserialize)]
pub struct SecondFactorFinishBody {
    mfa_token: String,
    ceremony_token: String,
    credential: PublicKeyCredential,
}

/// `POST /v1/auth/passkey/finish`.
#[utoipa::path(post, path = "/v1/auth/passkey/finish", tag = "auth", security(()),
    request_body(content = serde_json::Value, description = "`{mfa_token, ceremony_token, credential}`"),
    responses((status = 200, body = crate::auth::sessions::TokenResponse, description = "tokens (a phishing-resistant session)"), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn second_factor_finish(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<SecondFactorFinishBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let tokens =
        passkey_login::second_factor_finish(&state, &meta, &b.mfa_token, &b.ceremony_token, &b.credential).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// `POST /v1/auth/passkey/passwordless/start`.
#[utoipa::path(post, path = "/v1/auth/passkey/passwordless/start", tag = "auth", security(()),
    responses((status = 200, body = CeremonyStarted, description = "`options` for `navigator.credentials.get` with a discoverable credential"),
        (status = 429, body = ErrorBody)))]
pub async fn passwordless_start(state: web::Data<AppState>, meta: RequestMeta) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(passkey_login::passwordless_start(&state, &meta).await?))
}

#[derive(Deserialize)]
pub struct PasswordlessFinishBody {
    ceremony_token: String,
    credential: PublicKeyCredential,
}

/// `POST /v1/auth/passkey/passwordless/finish`.
#[utoipa::path(post, path = "/v1/auth/passkey/passwordless/finish", tag = "auth", security(()),
    request_body(content = serde_json::Value, description = "`{ceremony_token, credential}` (with the user handle)"),
    responses((status = 200, body = crate::auth::sessions::TokenResponse, description = "tokens (a phishing-resistant session)"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn passwordless_finish(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<PasswordlessFinishBody>,
) -> Result<HttpResponse, ApiError> {
    let tokens = passkey_login::passwordless_finish(&state, &meta, &body.ceremony_token, &body.credential).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// `GET /v1/admin/auth-policy`.
#[utoipa::path(get, path = "/v1/admin/auth-policy", tag = "admin",
    responses((status = 200, body = passkeys::AuthPolicy),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_policy(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(passkeys::get_policy(&state, &user).await?))
}

/// `PUT /v1/admin/auth-policy`.
#[utoipa::path(put, path = "/v1/admin/auth-policy", tag = "admin",
    request_body(content = serde_json::Value, description = "`{require_phishing_resistant, allow_passwordless}` (both booleans)"),
    responses((status = 200, body = passkeys::AuthPolicy, description = "the policies now in force"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn set_policy(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<AuthPolicy>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(passkeys::set_policy(&state, &user, body.into_inner()).await?))
}

/// Registers the passkey routes (`auth_limiter` on `/v1/auth/passkey/*`, `account_limiter` on
/// the password re-entry of a registration).
pub fn configure(
    cfg: &mut web::ServiceConfig,
    auth_limiter: crate::middleware::rate_limit::AuthLimiter,
    account_limiter: crate::middleware::rate_limit::AuthLimiter,
) {
    use super::resource;
    cfg.service(
        web::scope("/v1/auth/passkey")
            .wrap(auth_limiter)
            .service(resource("/start").route(web::post().to(second_factor_start)))
            .service(resource("/finish").route(web::post().to(second_factor_finish)))
            .service(resource("/passwordless/start").route(web::post().to(passwordless_start)))
            .service(resource("/passwordless/finish").route(web::post().to(passwordless_finish))),
    );
    cfg.service(resource("/v1/me/passkeys").route(web::get().to(list)));
    cfg.service(resource("/v1/me/passkeys/register/start").wrap(account_limiter).route(web::post().to(register_start)));
    cfg.service(resource("/v1/me/passkeys/register/finish").route(web::post().to(register_finish)));
    cfg.service(resource("/v1/me/passkeys/{id}").route(web::delete().to(delete)));
    cfg.service(resource("/v1/admin/auth-policy").route(web::get().to(get_policy)).route(web::put().to(set_policy)));
}

/// The passkey operations of the OpenAPI document (merged in `openapi::openapi_json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    register_start,
    register_finish,
    list,
    delete,
    second_factor_start,
    second_factor_finish,
    passwordless_start,
    passwordless_finish,
    get_policy,
    set_policy
))]
pub struct PasskeyDoc;

/// `GET /v1/me/passkeys`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<passkeys::PasskeyInfo>,
}

/// The schema of a started ceremony (`auth::passkeys::Started`): `options` is webauthn-rs's
/// `publicKey` object, passed to the browser as it is.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CeremonyStarted {
    /// Send back with the finish request; single use, short-lived.
    ceremony_token: String,
    /// Seconds until the ceremony expires.
    expires_in: i64,
    #[schema(value_type = Object)]
    options: serde_json::Value,
}
