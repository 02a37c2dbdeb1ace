//! Denied requests leave a record (DESIGN.md principle 2): a presented access token that is
//! refused (bad signature or claims, expired, session revoked or idle → 401) and a signed-in
//! caller refused by role or restriction (403). Each is one INSERT into `audit_inbox` in its
//! own transaction after the handler answered — in the caller's organization when the token
//! named one, else in the system ledger. Cheap by construction: nothing happens on 2xx, and a
//! request without any token is not recorded (it claims no identity; the rate limit and the
//! access log cover it). Never PHI: the event names the route pattern, not the path.
//!
//! Denials that their service already records (sign-in failures under `/v1/auth/*`, a wrong
//! current password) are not recorded twice.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::extractor::RequestMeta;
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::db::{self, Claims};
use crate::error::ApiError;
use crate::startup::AppState;

/// The extractor refused a presented access token: who the token claimed to be (when its
/// signature held) and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub claims: Claims,
    pub reason: &'static str,
}

/// The extractor accepted the caller: used when the handler then answers 403.
#[derive(Debug, Clone)]
pub struct Accepted(pub Claims);

/// Error codes whose 403 the service records itself.
const SELF_AUDITED: &[&str] = &["invalid_current_password"];

/// Middleware: records 401/403 answers to requests that presented an identity.
pub async fn audit_denials(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        return Ok(res);
    }
    let request = res.request();
    let route = request.match_pattern().unwrap_or_else(|| "<unmatched>".to_owned());
    let code = res.response().error().and_then(|e| e.as_error::<ApiError>()).map_or("forbidden", ApiError::code);
    let found = {
        let ext = request.extensions();
        if let Some(r) = ext.get::<Refusal>() {
            Some((r.claims, r.reason.to_owned()))
        } else if let (StatusCode::FORBIDDEN, Some(a)) = (status, ext.get::<Accepted>()) {
            (!SELF_AUDITED.contains(&code)).then(|| (a.0, format!("request refused: {code}")))
        } else {
            None
        }
    };
    let Some((claims, reason)) = found else { return Ok(res) };
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else { return Ok(res) };
    let meta = RequestMeta::of(request);
    let ctx = AuditContext {
        client_ip: meta.client_ip,
        user_agent: meta.user_agent.clone(),
        ..AuditContext::from_claims(&claims)
    };
    let event = AuditEvent::new(Action::Security, "request", Outcome::Denied).reason(format!(
        "{reason} ({} {route} → {})",
        request.method(),
        status.as_u16()
    ));
    if let Err(e) = record(&state, &claims, &ctx, &event).await {
        // The answer stands; a missing denial record is logged loudly instead.
        tracing::error!(error = %e, "could not record a denied request");
    }
    Ok(res)
}

async fn record(state: &AppState, claims: &Claims, ctx: &AuditContext, event: &AuditEvent) -> Result<(), sqlx::Error> {
    let mut tx = db::begin(&state.pool, claims).await?;
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await
}
