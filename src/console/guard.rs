//! The middleware in front of every console route:
//! - reads the session cookie and, when its MAC holds, hands the session to the extractors
//!   (`middleware::caller::CookieSession`); patients' sessions are never honoured here;
//! - refuses every unsafe request (not GET/HEAD) whose Origin is another site or that lacks
//!   the CSRF token (form field `csrf` or header `X-CSRF-Token`);
//! - sets the console's headers (CSP, no caching of pages) and the pre-session cookie;
//! - turns error answers into HTML pages: no session → the sign-in page, a one-time password
//!   to change or MFA to enrol → those pages, a page a passkey-only policy refuses → the passkey
//!   enrolment page, anything else → an error page with its status.
//!
//! The audit wrapper (`middleware::outcomes`) sits outside this one and records the refusals
//! and failures of `/console/` routes as it does for `/v1/`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

use super::session::{self, CsrfBinding};
use super::{ConsoleCtx, render_error};
use crate::auth::caller::Refusal;
use crate::db::{ClaimRole, Claims};
use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::state::AppState;

/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Largest urlencoded form body the guard reads to find the CSRF field.
const FORM_LIMIT: usize = 64 * 1024;

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal(anyhow::anyhow!("AppState missing")).into());
    };
    let key: &[u8; 32] = &state.console_key;
    let cookie = req
        .cookie(session::SESSION_COOKIE)
        .and_then(|c| session::decode(key, c.value()))
        .filter(|s| s.role != ClaimRole::Patient);
    let pre = req.cookie(session::PRE_COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() == 32);
    let (binding, new_pre) = match (&cookie, pre) {
        (Some(s), _) => (CsrfBinding::Session(s.session_id), None),
        (None, Some(p)) => (CsrfBinding::Pre(p), None),
        (None, None) => {
            let p = session::new_pre_value();
            (CsrfBinding::Pre(p.clone()), Some(p))
        }
    };
    if let Some(s) = cookie {
        req.extensions_mut().insert(s);
    }
    let secure = req.connection_info().scheme() == "https";
    req.extensions_mut().insert(ConsoleCtx {
        csrf: session::csrf_token(key, &binding),
        signed_in: cookie.is_some(),
        secure,
    });

    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let refused = match cross_site(&req) {
            Some(why) => Some(why),
            None => {
                let presented = presented_token(&mut req).await;
                match presented {
                    Some(t) if session::csrf_ok(key, &binding, &t) => None,
                    Some(_) => Some("CSRF token does not match the session"),
                    None => Some("CSRF token missing"),
                }
            }
        };
        if let Some(why) = refused {
            if let Some(s) = cookie {
                let request_id = req.extensions().get::<RequestId>().map(|r| r.0);
                let claims = Claims::user(s.user_id, s.org_id, s.role, request_id);
                req.extensions_mut().insert(Refusal { claims, reason: why });
            }
            let (http, _) = req.into_parts();
            let res = render_error(
                &http,
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was not sent from this console page, or it has expired. Go back, reload the page and try again.",
            );
            return Ok(finish(ServiceResponse::new(http, res), new_pre, secure));
        }
    }

    let res = next.call(req).await?.map_into_boxed_body();
    let res = html_errors(res, cookie.is_some());
    Ok(finish(res, new_pre, secure))
}

/// Why the request comes from another site, if it does: its Origin (or, without one, the
/// browser's Sec-Fetch-Site) is not this console's.
fn cross_site(req: &ServiceRequest) -> Option<&'static str> {
    let info = req.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    match req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) if origin != own => Some("cross-origin request (Origin is another site)"),
        Some(_) => None,
        None => match req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some("same-origin") | Some("none") | None => None,
            Some(_) => Some("cross-site request (Sec-Fetch-Site)"),
        },
    }
}

/// The CSRF token the request presents: the header, else the `csrf` field of an urlencoded
/// body (read here and put back for the handler).
async fn presented_token(req: &mut ServiceRequest) -> Option<String> {
    if let Some(v) = req.headers().get(session::CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    let mut body = web::BytesMut::new();
    let mut payload = req.take_payload();
    use futures_util::StreamExt;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > FORM_LIMIT {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let token = url_form_field(&body, session::CSRF_FIELD);
    let stream: futures_util::stream::LocalBoxStream<'static, Result<web::Bytes, actix_web::error::PayloadError>> =
        Box::pin(futures_util::stream::once(async move { Ok(body) }));
    req.set_payload(Payload::from(stream));
    token
}

fn url_form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Console headers, and the pre-session cookie when this request started one.
fn finish(mut res: ServiceResponse<BoxBody>, new_pre: Option<String>, secure: bool) -> ServiceResponse<BoxBody> {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    // Not `no-referrer`: with it, browsers send `Origin: null` on form posts and the origin
    // check could not tell this console from anywhere else. Nothing leaves for other origins.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    h.insert(header::HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin"));
    h.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(p) = new_pre {
        let c = super::cookie(session::PRE_COOKIE, p, secure, None);
        let _ = res.response_mut().add_cookie(&c);
    }
    res
}

/// Error answers as pages (see the module docs). `fetch` calls (Accept: application/json)
/// keep the JSON error.
fn html_errors(res: ServiceResponse<BoxBody>, had_cookie: bool) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let wants_json = res
        .request()
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if wants_json || is_html {
        return res;
    }
    let code = res.response().error().and_then(|e| e.as_error::<ApiError>()).map(ApiError::code);
    let (http, old) = res.into_parts();
    let new = match (status, code) {
        (StatusCode::UNAUTHORIZED, _) if !had_cookie && http.method() == Method::GET => see_other("/console/sign-in"),
        (StatusCode::UNAUTHORIZED, _) => {
            let mut r = render_error(&http, status, "Signed out", "Your session has ended. Sign in again to continue.");
            let _ = r.add_removal_cookie(&super::cookie(session::SESSION_COOKIE, String::new(), false, None));
            r
        }
        (StatusCode::FORBIDDEN, Some("password_change_required")) => see_other("/console/password"),
        (StatusCode::FORBIDDEN, Some("mfa_enrollment_required")) => see_other("/console/mfa"),
        // A page of a session the organization's policy restricts: the one page it may use. Its
        // other requests (forms) stay refusals, recorded by the audit wrapper.
        (StatusCode::FORBIDDEN, Some("passkey_enrollment_required")) if http.method() == Method::GET => {
            see_other("/console/passkeys")
        }
        (_, _) => {
            let message = match code {
                // A form sent from a session the passkey policy restricts (a page opened before
                // the policy was turned on, say): say what to do, in the console's words.
                Some("passkey_enrollment_required") => PASSKEY_REQUIRED.to_owned(),
                _ => old
                    .error()
                    .and_then(|e| e.as_error::<ApiError>())
                    .filter(|_| status.is_client_error())
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| default_message(status).to_owned()),
            };
            let page = render_error(&http, status, status.canonical_reason().unwrap_or("Error"), &message);
            // Keep the original response's error (the audit wrapper records its code) and
            // headers; only the body becomes the page.
            let (head, _) = old.into_parts();
            let mut res = head.set_body(page.into_body());
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            res
        }
    };
    ServiceResponse::new(http, new)
}

/// The page of a form refused because the organization requires a passkey and this session was
/// not opened with one.
const PASSKEY_REQUIRED: &str = "Refused: your organization requires a passkey, and this session was not opened \
    with one, so it may only register a passkey. Nothing was changed. Register a passkey on the Passkeys page, sign \
    out, sign in again with it, and try again.";

fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        403 => "Your role may not open this page.",
        404 => "There is no such page.",
        405 => "This page does not accept that kind of request.",
        s if s >= 500 => "Something went wrong on the server. The failure was recorded; try again shortly.",
        _ => "The request could not be completed.",
    }
}

/// `303 See Other` to `to`.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}
