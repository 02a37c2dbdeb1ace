//! The one audit wrapper of the HTTP API: every answer to a request for `/v1/…` that is a
//! refusal (4xx) or a failure (5xx) leaves exactly one event, recorded in a transaction of its
//! own with outcome `denied` or `error` and a stable reason code — unless the code that
//! handled the request recorded it already (clinical `Req::finish`, the sign-in services),
//! which it says by marking the request's [`Recorded`] flag. Successes are recorded by the
//! handler, in the transaction of the access itself (DESIGN.md principle 2); a wrapper cannot
//! do that after the fact. No list of routes or codes to keep in step: the rule is "every
//! matched `/v1/` route".
//!
//! Who the event names:
//! - the caller the extractor admitted, or the one whose token it refused (with why);
//! - else, when the request carried a bearer token, whoever that token names if its
//!   signature holds (the request failed before its session was checked), otherwise nobody
//!   (system ledger);
//! - a request that presented no token at all and was refused (4xx) is not recorded: it
//!   claims no identity, and the rate limit and the access log cover it. Its failures (5xx)
//!   are recorded, in the system ledger.
//!
//! The event: action `security` for a refused identity or permission (401, 403), otherwise the method's action (`read` for GET, `create` for POST, `update` for
//! PUT/PATCH, `delete` for DELETE); resource type `request`; the patient when the route is
//! one patient's (`/v1/patients/{id}/…`); reason `<code> (<METHOD> <route pattern> → <status>)`,
//! where `<code>` is the answer's error code (or the extractor's refusal reason). Never PHI:
//! the route pattern, not the path; no query string, no body.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use uuid::Uuid;

use crate::audit::{self, Action, AuditEvent, Outcome, Recorded};
use crate::db::{ClaimRole, Claims};
use crate::error::ApiError;
use crate::middleware::caller::{Refusal, Verdict, request_meta};
use crate::state::AppState;

/// Middleware: records each refused or failed `/v1/` request once (see the module docs).
pub async fn audit_outcomes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let recorded = Recorded::default();
    req.extensions_mut().insert(recorded.clone());
    req.extensions_mut().insert(Verdict::default());
    let res = next.call(req).await?;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || recorded.is_marked() {
        return Ok(res);
    }
    let request = res.request();
    // Unmatched paths name no resource; the others outside /v1 and the console are public
    // (health, metrics, the OpenAPI document).
    let audited = |r: &String| r.starts_with("/v1/") || r.starts_with("/console/");
    let Some(route) = request.match_pattern().filter(audited) else { return Ok(res) };
    let code = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .map_or_else(|| status_code(status), ApiError::code);
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else { return Ok(res) };
    let Some((claims, refused)) = who(request, &state) else { return Ok(res) };
    if claims.role == ClaimRole::Anonymous && status.is_client_error() && refused.is_none() {
        return Ok(res);
    }
    let action = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Action::Security,
        _ => action_of(request.method()),
    };
    let outcome = if status.is_server_error() { Outcome::Error } else { Outcome::Denied };
    let why = refused.unwrap_or(code);
    let mut event = AuditEvent::new(action, "request", outcome).reason(format!(
        "{why} ({} {route} → {})",
        request.method(),
        status.as_u16()
    ));
    if route.starts_with("/v1/patients/{id}")
        && let Some(patient) = request.match_info().get("id").and_then(|id| Uuid::parse_str(id).ok())
    {
        event = event.patient(patient);
    }
    let ctx = request_meta(request).context_for(&claims);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        audit::writer::record_later(&state.pool, &claims, &ctx, &event);
    } else {
        audit::writer::record_alone(&state.pool, &claims, &ctx, &event).await;
    }
    Ok(res)
}

/// Who the request came from, and why their identity was refused (if it was); `None` when
/// nothing about the request's identity can be said (no token, no verdict).
fn who(req: &HttpRequest, state: &AppState) -> Option<(Claims, Option<&'static str>)> {
    let request_id = req.extensions().get::<crate::middleware::RequestId>().map(|r| r.0);
    // The token (or console cookie) refused at the edge, or the session check's verdict.
    if let Some(r) = req.extensions().get::<Refusal>() {
        return Some((r.claims, Some(r.reason)));
    }
    let verdict = request_meta(req).verdict;
    if let Some(r) = verdict.refused() {
        return Some((r.claims, Some(r.reason)));
    }
    if let Some(claims) = verdict.accepted() {
        return Some((claims, None));
    }
    // Refused or failed before any extractor looked at the session: whoever a valid token
    // names (its signature holds; its session was not checked), else nobody.
    match crate::middleware::caller::bearer(req) {
        None => Some((Claims::anonymous(request_id), None)),
        Some(token) => match state.jwt.validate(token, state.clock.now().timestamp()) {
            Ok(c) => {
                let role = ClaimRole::from_user_role(&c.role)?;
                Some((Claims::user(c.sub, c.org, role, request_id), None))
            }
            Err(_) => Some((Claims::anonymous(request_id), Some("access token rejected"))),
        },
    }
}

fn action_of(method: &Method) -> Action {
    match *method {
        Method::POST => Action::Create,
        Method::PUT | Method::PATCH => Action::Update,
        Method::DELETE => Action::Delete,
        _ => Action::Read,
    }
}

/// The error code of an answer actix made itself (no `ApiError` behind it).
fn status_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "rate_limited",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "client_error",
    }
}
