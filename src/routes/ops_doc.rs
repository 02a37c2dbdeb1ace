//! OpenAPI descriptions of the routes implemented outside the clinical modules (health,
//! identity). These functions are never called: they only carry `#[utoipa::path]`, so the
//! document covers every endpoint the server serves. Bodies are described by their field
//! names; the handlers in `routes::{auth, me, admin_users, invites, health}` are the truth.
#![allow(dead_code)]

use super::openapi::ErrorBody;

#[utoipa::path(get, path = "/healthz", tag = "ops", security(()), responses((status = 200, description = "process is alive")))]
pub fn healthz() {}
#[utoipa::path(get, path = "/readyz", tag = "ops", security(()),
    responses((status = 200, description = "database reachable, policies current"), (status = 503, body = ErrorBody)))]
pub fn readyz() {}
#[utoipa::path(get, path = "/openapi.json", tag = "ops", security(()), responses((status = 200, description = "this document")))]
pub fn openapi_json() {}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", security(()),
    request_body(content = serde_json::Value, description = "`{email, password, organization?}`: `organization` (name or id) is needed only when the email has accounts in several organizations (emails are unique per organization)"),
    responses((status = 200, description = "`{access_token, refresh_token, …}` or `{mfa_required, mfa_token}`"),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub fn login() {}
#[utoipa::path(post, path = "/v1/auth/mfa/verify", tag = "auth", security(()),
    request_body(content = serde_json::Value, description = "`{mfa_token, code}` (TOTP or recovery code)"),
    responses((status = 200, description = "tokens"), (status = 401, body = ErrorBody)))]
pub fn mfa_verify() {}
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", security(()),
    request_body(content = serde_json::Value, description = "`{refresh_token}` (rotated; reuse revokes the session)"),
    responses((status = 200, description = "tokens"), (status = 401, body = ErrorBody)))]
pub fn refresh() {}
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", responses((status = 204), (status = 401, body = ErrorBody)))]
pub fn logout() {}
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", security(()),
    request_body(content = serde_json::Value, description = "`{invite_code, email, password}` (patients, from an invite)"),
    responses((status = 201, description = "tokens"), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub fn register() {}
#[utoipa::path(get, path = "/v1/me", tag = "me", responses((status = 200, description = "the caller"), (status = 401, body = ErrorBody)))]
pub fn me() {}
#[utoipa::path(post, path = "/v1/me/password", tag = "me",
    request_body(content = serde_json::Value, description = "`{current_password, new_password}`"),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub fn change_password() {}
#[utoipa::path(get, path = "/v1/me/sessions", tag = "me", responses((status = 200, description = "live sessions")))]
pub fn sessions() {}
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "me", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub fn revoke_session() {}
#[utoipa::path(post, path = "/v1/me/mfa/enroll", tag = "me", responses((status = 200, description = "`{secret, otpauth_uri}`"), (status = 409, body = ErrorBody)))]
pub fn mfa_enroll() {}
#[utoipa::path(post, path = "/v1/me/mfa/confirm", tag = "me", request_body(content = serde_json::Value, description = "`{code}`"),
    responses((status = 200, description = "recovery codes (shown once)"), (status = 401, body = ErrorBody)))]
pub fn mfa_confirm() {}
#[utoipa::path(post, path = "/v1/me/mfa/recovery-codes", tag = "me", request_body(content = serde_json::Value, description = "`{code}`"),
    responses((status = 200, description = "new recovery codes")))]
pub fn recovery_codes() {}
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin",
    request_body(content = serde_json::Value, description = "`{email, role: clinician|admin|auditor, display_name}`"),
    responses((status = 201, description = "the user and a one-time password"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub fn admin_create_user() {}
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", params(("limit" = Option<i64>, Query), ("after" = Option<uuid::Uuid>, Query)),
    responses((status = 200, description = "users of the admin's organization")))]
pub fn admin_list_users() {}
#[utoipa::path(post, path = "/v1/admin/users/{id}/{action}", tag = "admin",
    params(("id" = uuid::Uuid, Path), ("action" = String, Path, description = "disable, enable, unlock, reset-mfa")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub fn admin_user_action() {}
#[utoipa::path(post, path = "/v1/patients/{id}/invite", tag = "patients", params(("id" = uuid::Uuid, Path)),
    responses((status = 201, description = "a one-time invite code for the patient portal"), (status = 404, body = ErrorBody)))]
pub fn invite() {}
