//! Sign-in (password, then a TOTP or recovery code — or a passkey, `console::passkeys`),
//! sign-out. The work is the API's: `auth::login::{login_in, verify_mfa}` (lockout, no user
//! enumeration, audit events) and `auth::account::revoke_own_session`. The console only keeps
//! the result in its cookie.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::guard::see_other;
use super::session::{self, MFA_COOKIE, SESSION_COOKIE};
use super::{ConsoleCtx, Page, cookie, html, html_status};
use crate::auth::login::{self, LoginOutcome, MFA_TOKEN_TTL_SECS};
use crate::auth::sessions::TokenResponse;
use crate::auth::{AnySessionUser, RequestMeta, account};
use crate::db::ClaimRole;
use crate::error::ApiError;
use crate::middleware::caller::CookieSession;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    page: Page,
    step_code: bool,
    error: Option<String>,
}

fn sign_in_page(ctx: &ConsoleCtx, step_code: bool, error: Option<&str>) -> SignInPage {
    SignInPage { page: Page::public(ctx, "Sign in"), step_code, error: error.map(str::to_owned) }
}

/// `GET /console/sign-in`.
pub async fn form(ctx: ConsoleCtx) -> Result<HttpResponse, ApiError> {
    html(&sign_in_page(&ctx, false, None))
}

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: SecretString,
    /// The organization (name or id), as the API's login takes it: needed only when the email
    /// has accounts in several organizations (emails are unique per organization).
    #[serde(default)]
    organization: String,
}

/// The form's organization field as the login service takes it: blank is "not named".
fn organization_of(field: &str) -> Option<&str> {
    Some(field.trim()).filter(|o| !o.is_empty())
}

const BAD_CREDENTIALS: &str = "The email or password is not correct, or the account is locked or disabled.";

/// `POST /console/sign-in`: the password step.
pub async fn submit(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    meta: RequestMeta,
    form: web::Form<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let Credentials { email, password, organization } = form.into_inner();
    let outcome = login::login_in(&state, &meta, &email, organization_of(&organization), password).await;
    match outcome.map_err(ApiError::from) {
        Ok(LoginOutcome::MfaRequired { mfa_token, .. }) => {
            let mut res = see_other("/console/sign-in/code");
            res.add_cookie(&cookie(MFA_COOKIE, mfa_token, ctx.secure, Some(MFA_TOKEN_TTL_SECS)))
                .map_err(ApiError::internal)?;
            Ok(res)
        }
        Ok(LoginOutcome::Tokens(tokens)) => signed_in(&state, &ctx, &meta, tokens).await,
        Err(ApiError::Unauthorized) => {
            html_status(StatusCode::UNAUTHORIZED, &sign_in_page(&ctx, false, Some(BAD_CREDENTIALS)))
        }
        Err(ApiError::RateLimited { .. }) => html_status(
            StatusCode::TOO_MANY_REQUESTS,
            &sign_in_page(&ctx, false, Some("Too many attempts. Wait a minute and try again.")),
        ),
        Err(e) => Err(e),
    }
}

/// `GET /console/sign-in/code`: the second step, while the challenge cookie lives.
pub async fn code_form(req: HttpRequest, ctx: ConsoleCtx) -> Result<HttpResponse, ApiError> {
    if req.cookie(MFA_COOKIE).is_none() {
        return Ok(see_other("/console/sign-in"));
    }
    html(&sign_in_page(&ctx, true, None))
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// `POST /console/sign-in/code`: a TOTP or recovery code completes the sign-in.
pub async fn code_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    meta: RequestMeta,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, ApiError> {
    let Some(challenge) = req.cookie(MFA_COOKIE) else {
        return Ok(see_other("/console/sign-in"));
    };
    match login::verify_mfa(&state, &meta, challenge.value(), form.code.trim()).await.map_err(ApiError::from) {
        Ok(tokens) => {
            let mut res = signed_in(&state, &ctx, &meta, tokens).await?;
            res.add_removal_cookie(&cookie(MFA_COOKIE, String::new(), ctx.secure, None)).map_err(ApiError::internal)?;
            Ok(res)
        }
        Err(ApiError::Unauthorized) => html_status(
            StatusCode::UNAUTHORIZED,
            &sign_in_page(
                &ctx,
                true,
                Some(
                    "The code is not correct or has been used. After three wrong codes, sign in with your password again.",
                ),
            ),
        ),
        Err(e) => Err(e),
    }
}

/// A session was opened: keep it in the cookie and go home — unless it is a patient's, which
/// the console does not serve (the session is ended at once).
async fn signed_in(
    state: &AppState,
    ctx: &ConsoleCtx,
    meta: &RequestMeta,
    tokens: TokenResponse,
) -> Result<HttpResponse, ApiError> {
    let Some(session) = session_cookie(state, ctx, meta, tokens).await? else {
        return html_status(StatusCode::FORBIDDEN, &sign_in_page(ctx, false, Some(PATIENTS_REFUSED)));
    };
    let mut res = see_other("/console/");
    res.add_cookie(&session).map_err(ApiError::internal)?;
    Ok(res)
}

/// What a patient who signs in here is told.
pub(super) const PATIENTS_REFUSED: &str = "The console is for staff. Patients sign in through the patient portal.";

/// The console's session cookie for a session just opened by a sign-in service; `None` for a
/// patient's session, which is ended at once (the console serves staff only).
pub(super) async fn session_cookie(
    state: &AppState,
    ctx: &ConsoleCtx,
    meta: &RequestMeta,
    tokens: TokenResponse,
) -> Result<Option<Cookie<'static>>, ApiError> {
    // The access token was minted a moment ago by this server: it names the account.
    let claims = state.jwt.validate(&tokens.access_token, state.clock.now().timestamp()).map_err(ApiError::internal)?;
    let role = ClaimRole::from_user_role(&claims.role)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("unknown role in a fresh token")))?;
    let s = CookieSession { user_id: claims.sub, org_id: claims.org, session_id: claims.sid, role };
    if role == ClaimRole::Patient {
        let user = crate::auth::AuthUser {
            user_id: s.user_id,
            org_id: s.org_id,
            role,
            session_id: s.session_id,
            mfa_verified: false,
            must_change_password: false,
            passkey_enrollment_required: false,
            session_expires_at: state.clock.now(),
            idle_expires_at: state.clock.now(),
            meta: meta.clone(),
        };
        account::revoke_own_session(state, &user, s.session_id, "patients are not served by the console").await?;
        return Ok(None);
    }
    Ok(Some(cookie(SESSION_COOKIE, session::encode(&state.console_key, &s), ctx.secure, None)))
}

/// `POST /console/sign-out`: ends the session (any session, even one awaiting a password
/// change) and forgets the cookie.
pub async fn sign_out(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AnySessionUser,
) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    account::revoke_own_session(&state, &user, user.session_id, "logout").await?;
    let mut res = see_other("/console/sign-in");
    res.add_removal_cookie(&cookie(SESSION_COOKIE, String::new(), ctx.secure, None)).map_err(ApiError::internal)?;
    Ok(res)
}
