//! The Custos Console (`/console/`): server-rendered pages (askama templates in
//! `templates/console/`) with small plain JavaScript modules, all assets compiled into the
//! binary. The structure, for whoever adds a page, is in docs/console.md.
//!
//! The console is part of the HTTP layer and calls the same services as the API: a page
//! handler takes the same extractors (`AuthUser`, `EnrollingUser`, `AnySessionUser`), which
//! here find the session in the console's HttpOnly cookie instead of a bearer token
//! ([`guard`] puts it there). Refusals and failures are recorded by the same audit wrapper
//! (`middleware::outcomes`), successes by the services, in the transaction of the access.

pub mod account;
pub mod admin;
pub mod assets;
pub mod auditor;
pub mod guard;
pub mod passkeys;
pub mod report;
pub mod review;
pub mod session;
pub mod sign_in;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;

use crate::auth::AuthUser;
use crate::db::ClaimRole;
use crate::error::ApiError;

/// What the guard learnt about the request, for the pages: the CSRF token to embed and
/// whether the connection is TLS (cookies get `Secure`).
#[derive(Debug, Clone)]
pub struct ConsoleCtx {
    pub csrf: String,
    pub signed_in: bool,
    pub secure: bool,
}

impl FromRequest for ConsoleCtx {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<ConsoleCtx>()
                .cloned()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("console guard missing"))),
        )
    }
}

/// One entry of the navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every page's layout (`templates/console/base.html`) needs.
pub struct Page {
    pub title: String,
    pub csrf: String,
    pub assets: &'static str,
    /// Navigation for the signed-in user (empty before sign-in).
    pub nav: Vec<NavItem>,
    /// The user's own pages (sessions, passkeys); empty before sign-in.
    pub account: Vec<NavItem>,
    pub role: &'static str,
    /// Seconds until the session ends if the user does nothing (the logoff warning's timer).
    pub idle_seconds: i64,
}

/// The navigation: (href, label, roles that see it). Auditors and admins both read their
/// organization's ledger (DESIGN.md, "Who uses it"); auditors work the privacy review queue
/// (`routes::review::reviewer`); admins manage users, care teams and keys; both see the
/// break-glass grants (admins to manage, auditors to review).
const NAV: &[(&str, &str, &[ClaimRole])] = &[
    ("/console/events", "Events", &[ClaimRole::Auditor, ClaimRole::Admin]),
    ("/console/checkpoints", "Checkpoints", &[ClaimRole::Auditor, ClaimRole::Admin]),
    ("/console/access-report", "Access report", &[ClaimRole::Auditor, ClaimRole::Admin]),
    ("/console/exports", "Exports", &[ClaimRole::Auditor, ClaimRole::Admin]),
    ("/console/review", "Review", &[ClaimRole::Auditor]),
    ("/console/break-glass", "Break-glass", &[ClaimRole::Admin, ClaimRole::Auditor]),
    ("/console/users", "Users", &[ClaimRole::Admin]),
    ("/console/security", "Sign-in policy", &[ClaimRole::Admin]),
    ("/console/care-teams", "Care teams", &[ClaimRole::Admin]),
    ("/console/health", "Health", &[ClaimRole::Admin]),
];

/// The signed-in user's own pages, every staff role's: shown apart from the work pages, next to
/// the role and "Sign out" (the "Your account" navigation).
const ACCOUNT_NAV: &[(&str, &str)] = &[("/console/sessions", "Sessions"), ("/console/passkeys", "Passkeys")];

impl Page {
    /// A page before sign-in (no navigation).
    pub fn public(ctx: &ConsoleCtx, title: &str) -> Self {
        Self {
            title: title.to_owned(),
            csrf: ctx.csrf.clone(),
            assets: assets::VERSION.as_str(),
            nav: Vec::new(),
            account: Vec::new(),
            role: "",
            idle_seconds: 0,
        }
    }

    /// A page for a signed-in user; `current` is the href of the navigation entry it belongs to.
    pub fn for_user(ctx: &ConsoleCtx, user: &AuthUser, title: &str, current: &str) -> Self {
        let nav = NAV
            .iter()
            .filter(|(_, _, roles)| roles.contains(&user.role))
            .map(|(href, label, _)| NavItem { href, label, current: *href == current })
            .collect();
        let account =
            ACCOUNT_NAV.iter().map(|(href, label)| NavItem { href, label, current: *href == current }).collect();
        let now = chrono::Utc::now();
        Self {
            nav,
            account,
            role: user.role.as_str(),
            idle_seconds: (user.idle_expires_at - now).num_seconds().max(0),
            ..Self::public(ctx, title)
        }
    }
}

/// A rendered page, `200 OK`.
pub fn html<T: Template>(page: &T) -> Result<HttpResponse, ApiError> {
    html_status(StatusCode::OK, page)
}

/// A rendered page with `status`.
pub fn html_status<T: Template>(status: StatusCode, page: &T) -> Result<HttpResponse, ApiError> {
    let body = page.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    page: Page,
    heading: &'a str,
    message: &'a str,
    signed_in: bool,
}

/// An error page (never fails: falls back to plain text).
pub fn render_error(req: &HttpRequest, status: StatusCode, heading: &str, message: &str) -> HttpResponse {
    let ctx = req.extensions().get::<ConsoleCtx>().cloned();
    let ctx = ctx.unwrap_or(ConsoleCtx { csrf: String::new(), signed_in: false, secure: false });
    let page = ErrorPage { page: Page::public(&ctx, heading), heading, message, signed_in: ctx.signed_in };
    html_status(status, &page).unwrap_or_else(|_| {
        HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(message.to_owned())
    })
}

/// A console cookie: Path=/console, HttpOnly, SameSite=Strict, Secure under TLS.
pub fn cookie(name: &'static str, value: String, secure: bool, max_age_secs: Option<i64>) -> Cookie<'static> {
    let mut c = Cookie::build(name, value).path("/console").http_only(true).same_site(SameSite::Strict).secure(secure);
    if let Some(s) = max_age_secs {
        c = c.max_age(actix_web::cookie::time::Duration::seconds(s));
    }
    c.finish()
}

/// Registers `/console/…`; `limiter` is the API's per-IP sign-in rate limit, shared.
pub fn configure(cfg: &mut web::ServiceConfig, limiter: crate::middleware::rate_limit::AuthLimiter) {
    use crate::routes::resource;
    cfg.service(resource("/console").route(web::get().to(|| async { guard::see_other("/console/") })));
    cfg.service(
        web::scope("/console")
            .wrap(from_fn(guard::guard))
            .service(resource("/assets/{version}/{name}").route(web::get().to(assets::serve)))
            .service(resource("/").route(web::get().to(account::home)))
            .service(
                resource("/sign-in")
                    .route(web::get().to(sign_in::form))
                    .route(web::post().to(sign_in::submit).wrap(limiter.clone())),
            )
            .service(
                resource("/sign-in/code")
                    .route(web::get().to(sign_in::code_form))
                    .route(web::post().to(sign_in::code_submit).wrap(limiter.clone())),
            )
            .configure(|cfg| passkeys::configure(cfg, limiter))
            .service(resource("/sign-out").route(web::post().to(sign_in::sign_out)))
            .service(
                resource("/password")
                    .route(web::get().to(account::password_form))
                    .route(web::post().to(account::password_submit)),
            )
            .service(resource("/mfa").route(web::get().to(account::mfa_page)))
            .service(resource("/mfa/start").route(web::post().to(account::mfa_start)))
            .service(resource("/mfa/confirm").route(web::post().to(account::mfa_confirm)))
            .service(resource("/sessions").route(web::get().to(account::sessions)))
            .service(resource("/sessions/{id}/revoke").route(web::post().to(account::revoke_session)))
            .service(resource("/ping").route(web::post().to(account::ping)))
            .configure(admin::configure)
            .configure(auditor::configure)
            .configure(report::configure)
            .configure(review::configure)
            .default_service(web::to(|req: HttpRequest| async move {
                render_error(&req, StatusCode::NOT_FOUND, "Not found", "There is no such page.")
            })),
    );
}
