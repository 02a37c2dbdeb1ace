//! The signed-in user's own pages: home, the forced password change, MFA enrolment (QR code
//! rendered here as SVG), sessions with revoke, and the keep-alive behind the logoff warning.
//! Every action is the API's service (`auth::account`, `auth::mfa`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use base64::Engine;
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::guard::see_other;
use super::session::SESSION_COOKIE;
use super::{ConsoleCtx, Page, cookie, html, html_status};
use crate::auth::account::{self, SessionInfo};
use crate::auth::{AnySessionUser, AuthUser, EnrollingUser, mfa};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/home.html")]
struct Home {
    page: Page,
}

/// `GET /console/`: where sign-in lands; restricted sessions are sent on (by the guard) to
/// the password change or MFA enrolment.
pub async fn home(ctx: ConsoleCtx, user: AuthUser) -> Result<HttpResponse, ApiError> {
    html(&Home { page: Page::for_user(&ctx, &user, "Custos Console", "/console/") })
}

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    page: Page,
    forced: bool,
    error: Option<String>,
}

/// `GET /console/password`.
pub async fn password_form(ctx: ConsoleCtx, user: AnySessionUser) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    let page = PasswordPage {
        forced: user.must_change_password,
        page: restricted_page(&ctx, &user, "Change your password"),
        error: None,
    };
    html(&page)
}

/// The layout of a page a restricted session may see: navigation only for a full session.
pub(super) fn restricted_page(ctx: &ConsoleCtx, user: &AuthUser, title: &str) -> Page {
    if user.must_change_password || user.mfa_enrollment_required() || user.passkey_enrollment_required {
        Page {
            idle_seconds: (user.idle_expires_at - chrono::Utc::now()).num_seconds().max(0),
            ..Page::public(ctx, title)
        }
    } else {
        Page::for_user(ctx, user, title, "")
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: SecretString,
    new_password: SecretString,
}

/// `POST /console/password`: `auth::account::change_password` (policy, other sessions revoked).
pub async fn password_submit(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AnySessionUser,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    let PasswordForm { current_password, new_password } = form.into_inner();
    match account::change_password(&state, &user, current_password, new_password).await.map_err(ApiError::from) {
        Ok(()) => Ok(see_other("/console/")),
        Err(e @ (ApiError::WeakPassword(_) | ApiError::Validation { .. } | ApiError::Forbidden { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            let page = PasswordPage {
                forced: user.must_change_password,
                page: restricted_page(&ctx, &user, "Change your password"),
                error: Some(e.to_string()),
            };
            html_status(status, &page)
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "console/mfa.html")]
struct MfaPage {
    page: Page,
    /// The QR code as an `data:image/svg+xml` URL, once enrolment started.
    qr: Option<String>,
    secret: Option<String>,
    error: Option<String>,
    recovery_codes: Vec<String>,
}

/// `GET /console/mfa`: explains, and offers to start enrolment (a POST: it makes a secret).
pub async fn mfa_page(ctx: ConsoleCtx, user: EnrollingUser) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    if !user.mfa_enrollment_required() {
        return Ok(see_other("/console/"));
    }
    let page = restricted_page(&ctx, &user, "Set up two-factor sign-in");
    html(&MfaPage { page, qr: None, secret: None, error: None, recovery_codes: Vec::new() })
}

/// The otpauth URI as a QR code: an SVG image, as a data URL (no markup of ours is injected).
pub fn qr_data_url(uri: &str) -> Result<String, ApiError> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("QR code: {e}")))?;
    let image = code.render::<svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build();
    Ok(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(image)))
}

/// `POST /console/mfa/start`: `auth::mfa::enroll`, shown as a QR code and the secret.
pub async fn mfa_start(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: EnrollingUser,
) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    let enrolment = mfa::enroll(&state, &user).await?;
    let page = restricted_page(&ctx, &user, "Set up two-factor sign-in");
    let qr = qr_data_url(&enrolment.otpauth_uri)?;
    html(&MfaPage {
        page,
        qr: Some(qr),
        secret: Some(enrolment.secret_base32.clone()),
        error: None,
        recovery_codes: Vec::new(),
    })
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// `POST /console/mfa/confirm`: `auth::mfa::confirm`; the recovery codes are shown once.
pub async fn mfa_confirm(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: EnrollingUser,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, ApiError> {
    let user = user.0;
    match mfa::confirm(&state, &user, form.code.trim()).await.map_err(ApiError::from) {
        Ok(codes) => {
            let page = Page::public(&ctx, "Two-factor sign-in is on");
            html(&MfaPage { page, qr: None, secret: None, error: None, recovery_codes: codes.recovery_codes.clone() })
        }
        Err(ApiError::Forbidden { .. } | ApiError::Conflict(_)) => {
            let page = restricted_page(&ctx, &user, "Set up two-factor sign-in");
            let error = Some("The code was not accepted. Start again and enter the code your app shows.".to_owned());
            html_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &MfaPage { page, qr: None, secret: None, error, recovery_codes: Vec::new() },
            )
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    page: Page,
    sessions: Vec<SessionInfo>,
}

/// `GET /console/sessions`: `auth::account::list_sessions`.
pub async fn sessions(state: web::Data<AppState>, ctx: ConsoleCtx, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let sessions = account::list_sessions(&state, &user).await?;
    html(&SessionsPage { page: Page::for_user(&ctx, &user, "Your sessions", "/console/sessions"), sessions })
}

/// `POST /console/sessions/{id}/revoke`: `auth::account::revoke_own_session`. Revoking the
/// current one signs out.
pub async fn revoke_session(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    account::revoke_own_session(&state, &user, id, "revoked by user").await?;
    if id == user.session_id {
        let mut res = see_other("/console/sign-in");
        res.add_removal_cookie(&cookie(SESSION_COOKIE, String::new(), ctx.secure, None)).map_err(ApiError::internal)?;
        return Ok(res);
    }
    Ok(see_other("/console/sessions"))
}

/// `POST /console/ping` (fetch, with the CSRF header): the user chose to stay signed in; the
/// extractor's session check moved `last_seen_at`. Answers the seconds left.
pub async fn ping(user: AnySessionUser) -> HttpResponse {
    let left = (user.0.idle_expires_at - chrono::Utc::now()).num_seconds().max(0);
    HttpResponse::Ok().json(serde_json::json!({ "idle_seconds": left }))
}
