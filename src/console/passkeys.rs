//! Passkeys in the console: the account page that registers, lists and removes them, and the
//! two sign-in ceremonies (a passkey as the second factor after the password; passwordless
//! where the organization allows it). Every ceremony is the API's service
//! (`auth::passkeys`, `auth::passkey_login`): the same re-authentication, ceremony state,
//! counters, policy checks and audit events; this module only carries them over the console's
//! cookie session. The browser side is `assets/console/js/passkey.js`, which calls
//! `navigator.credentials.create/get` and posts the result here as JSON with the CSRF header.
//!
//! What differs from the API: the MFA challenge token stays in its HttpOnly cookie (the page's
//! script never sees it), and a finished sign-in answers `{location}` with the session cookie
//! instead of tokens. Under the organization's "phishing-resistant factor" policy a TOTP-only
//! staff session is restricted: the guard sends its page requests here, where it may only
//! register a passkey and then sign in again with it (docs/passkeys.md says why enrolling does
//! not lift the restriction of the session it was done from).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::account::restricted_page;
use super::guard::see_other;
use super::session::MFA_COOKIE;
use super::sign_in::{PATIENTS_REFUSED, session_cookie};
use super::{ConsoleCtx, cookie, html};
use crate::auth::passkeys::{self, PasskeyInfo};
use crate::auth::sessions::TokenResponse;
use crate::auth::{AuthUser, EnrollingUser, RequestMeta, passkey_login};
use crate::error::ApiError;
use crate::middleware::rate_limit::AuthLimiter;
use crate::state::AppState;

/// Registers the passkey routes inside the `/console` scope; `limiter` is the sign-in rate
/// limit (per client IP), on every ceremony start and on the password re-entry.
pub fn configure(cfg: &mut web::ServiceConfig, limiter: AuthLimiter) {
    use crate::routes::resource;
    cfg.service(resource("/passkeys").route(web::get().to(page)));
    // The ceremony's start is the API's handler itself (the password again, then the creation
    // options); the console adds its cookie session and CSRF header around it.
    cfg.service(
        resource("/passkeys/register/start")
            .route(web::post().to(crate::routes::passkeys::register_start).wrap(limiter.clone())),
    );
    cfg.service(resource("/passkeys/register/finish").route(web::post().to(register_finish)));
    cfg.service(resource("/passkeys/{id}/remove").route(web::post().to(remove)));
    cfg.service(resource("/sign-in/passkey/start").route(web::post().to(second_factor_start).wrap(limiter.clone())));
    cfg.service(resource("/sign-in/passkey/finish").route(web::post().to(second_factor_finish).wrap(limiter.clone())));
    cfg.service(
        resource("/sign-in/passwordless/start").route(web::post().to(passwordless_start).wrap(limiter.clone())),
    );
    cfg.service(resource("/sign-in/passwordless/finish").route(web::post().to(passwordless_finish).wrap(limiter)));
}

/// One passkey as the page shows it.
pub struct Row {
    pub id: Uuid,
    pub label: String,
    pub created: String,
    pub last_used: String,
    /// "Synced (backed up)", "Can be synced" or "This device only".
    pub backup: &'static str,
    pub disabled: bool,
}

impl From<PasskeyInfo> for Row {
    fn from(p: PasskeyInfo) -> Self {
        const FORMAT: &str = "%Y-%m-%d %H:%M UTC";
        Self {
            id: p.id,
            label: p.label,
            created: p.created_at.format(FORMAT).to_string(),
            last_used: p.last_used_at.map_or_else(|| "never".to_owned(), |t| t.format(FORMAT).to_string()),
            backup: backup_label(p.backup_eligible, p.backup_state),
            disabled: p.clone_detected_at.is_some(),
        }
    }
}

/// The WebAuthn backup flags in words: BE (may be synced to other devices), BS (is synced now).
pub fn backup_label(eligible: bool, state: bool) -> &'static str {
    match (eligible, state) {
        (_, true) => "Synced (backed up)",
        (true, false) => "Can be synced, not yet backed up",
        (false, false) => "This device only",
    }
}

#[derive(Template)]
#[template(path = "console/passkeys.html")]
struct PasskeysPage {
    page: super::Page,
    /// The session may only enrol (the organization's policy, or no second factor yet).
    restricted: bool,
    /// Restricted by the organization's policy (not only awaiting a first second factor).
    policy: bool,
    /// `None` for a restricted session: listing is a full session's (as in the API).
    passkeys: Option<Vec<Row>>,
    registered: bool,
    removed: bool,
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /console/passkeys`: the enrolment form, and for a full session the list
/// (`auth::passkeys::list`, audited as the API's listing).
pub async fn page(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: EnrollingUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    let restricted = user.clone().full().is_err();
    let passkeys =
        if restricted { None } else { Some(passkeys::list(&state, &user).await?.into_iter().map(Row::from).collect()) };
    let done = query.done.as_deref();
    let title = if restricted { "Register a passkey" } else { "Your passkeys" };
    let page = if restricted {
        restricted_page(&ctx, &user, title)
    } else {
        super::Page::for_user(&ctx, &user, title, "/console/passkeys")
    };
    html(&PasskeysPage {
        page,
        restricted,
        policy: user.passkey_enrollment_required,
        passkeys,
        registered: done == Some("registered"),
        removed: done == Some("removed"),
    })
}

#[derive(Deserialize)]
pub struct RegisterFinishBody {
    ceremony_token: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /console/passkeys/register/finish` (JSON): `auth::passkeys::register_finish`.
pub async fn register_finish(
    state: web::Data<AppState>,
    user: EnrollingUser,
    body: web::Json<RegisterFinishBody>,
) -> Result<HttpResponse, ApiError> {
    let info = passkeys::register_finish(&state, &user.0, &body.ceremony_token, &body.credential).await?;
    Ok(HttpResponse::Created()
        .json(serde_json::json!({ "id": info.id, "location": "/console/passkeys?done=registered" })))
}

/// `POST /console/passkeys/{id}/remove` (form): `auth::passkeys::delete` (full sessions, as
/// the API's DELETE).
pub async fn remove(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    passkeys::delete(&state, &user, path.into_inner()).await?;
    Ok(see_other("/console/passkeys?done=removed"))
}

/// The MFA challenge of the password step, from its cookie: 401 without one.
fn challenge(req: &HttpRequest) -> Result<String, ApiError> {
    req.cookie(MFA_COOKIE).map(|c| c.value().to_owned()).ok_or(ApiError::Unauthorized)
}

/// `POST /console/sign-in/passkey/start` (JSON): the passkey as the second factor
/// (`auth::passkey_login::second_factor_start` with the challenge cookie).
pub async fn second_factor_start(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, ApiError> {
    let mfa_token = challenge(&req)?;
    Ok(HttpResponse::Ok().json(passkey_login::second_factor_start(&state, &meta, &mfa_token).await?))
}

#[derive(Deserialize)]
pub struct FinishBody {
    ceremony_token: String,
    credential: PublicKeyCredential,
}

/// `POST /console/sign-in/passkey/finish` (JSON): `auth::passkey_login::second_factor_finish`;
/// the session goes into the cookie, the challenge cookie goes.
pub async fn second_factor_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    meta: RequestMeta,
    body: web::Json<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    let mfa_token = challenge(&req)?;
    let tokens =
        passkey_login::second_factor_finish(&state, &meta, &mfa_token, &body.ceremony_token, &body.credential).await?;
    let mut res = signed_in(&state, &ctx, &meta, tokens).await?;
    res.add_removal_cookie(&cookie(MFA_COOKIE, String::new(), ctx.secure, None)).map_err(ApiError::internal)?;
    Ok(res)
}

/// `POST /console/sign-in/passwordless/start` (JSON): `auth::passkey_login::passwordless_start`.
pub async fn passwordless_start(state: web::Data<AppState>, meta: RequestMeta) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(passkey_login::passwordless_start(&state, &meta).await?))
}

/// `POST /console/sign-in/passwordless/finish` (JSON): `auth::passkey_login::passwordless_finish`
/// (403 `passwordless_not_allowed` where the organization does not allow it).
pub async fn passwordless_finish(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    meta: RequestMeta,
    body: web::Json<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    let tokens = passkey_login::passwordless_finish(&state, &meta, &body.ceremony_token, &body.credential).await?;
    signed_in(&state, &ctx, &meta, tokens).await
}

/// A passkey sign-in opened a session: the cookie, and where the page goes next.
async fn signed_in(
    state: &AppState,
    ctx: &ConsoleCtx,
    meta: &RequestMeta,
    tokens: TokenResponse,
) -> Result<HttpResponse, ApiError> {
    let Some(session) = session_cookie(state, ctx, meta, tokens).await? else {
        return Err(ApiError::Forbidden { code: "forbidden", message: PATIENTS_REFUSED.into() });
    };
    Ok(HttpResponse::Ok().cookie(session).json(serde_json::json!({ "location": "/console/" })))
}

#[cfg(test)]
mod tests {
    use super::backup_label;

    #[test]
    fn backup_flags_in_words() {
        assert_eq!(backup_label(false, false), "This device only");
        assert_eq!(backup_label(true, false), "Can be synced, not yet backed up");
        assert_eq!(backup_label(true, true), "Synced (backed up)");
    }
}
