//! `Idempotency-Key` on writes (IETF httpapi draft "The Idempotency-Key HTTP Header Field"):
//! for a `POST` that carries the header and a bearer token, the request is fingerprinted
//! (SHA-256 of method, path with query, and body) and the caller's stored answer for that key
//! looked up:
//! - none (or older than 24 hours): the request goes on, and a clinical write stores its
//!   answer under the key in its own transaction (src/clinical/idempotency.rs);
//! - one for the same request: its answer is sent again, unchanged, with nothing written —
//!   after the same session check as any request, and recorded as a read of the stored
//!   answer (it may carry clinical content), naming the write's patient;
//! - one for another request: 422 `idempotency_key_reused`.
//!
//! Two requests with one key at the same time both run; the second to commit fails on the
//! key (409) and its write is rolled back. Keys are the user's own: another user's key of the
//! same text is another key.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpResponse, web};
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};

use crate::audit::{self, Action, AuditEvent, Outcome};
use crate::clinical::idempotency::{self, IdempotentWrite};
use crate::db::{self, ClaimRole, Claims};
use crate::error::ApiError;
use crate::middleware::caller::{AuthUser, bearer, request_meta};
use crate::state::AppState;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The key: the header's string (a structured-field string, `"…"`; a bare token is accepted
/// too), 1–255 visible ASCII characters.
fn key_of(req: &ServiceRequest) -> Option<Result<String, ApiError>> {
    let raw = req.headers().get(IDEMPOTENCY_KEY_HEADER)?;
    let text = raw.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    let ok = (1..=255).contains(&text.len()) && text.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"');
    Some(if ok {
        Ok(text.to_owned())
    } else {
        Err(ApiError::validation("Idempotency-Key", "must be a string of 1 to 255 visible ASCII characters"))
    })
}

pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::POST {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    }
    let key = match key_of(&req) {
        None => return next.call(req).await.map(ServiceResponse::map_into_boxed_body),
        Some(Err(e)) => return Ok(req.error_response(e)),
        Some(Ok(k)) => k,
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    // Whose key: a token whose signature holds (the extractor refuses any other, and checks
    // the session, as for any request).
    let claims = bearer(req.request())
        .and_then(|t| state.jwt.validate(t, state.clock.now().timestamp()).ok())
        .and_then(|c| ClaimRole::from_user_role(&c.role).map(|role| Claims::user(c.sub, c.org, role, None)));
    let Some(claims) = claims else { return next.call(req).await.map(ServiceResponse::map_into_boxed_body) };

    let limit = state.settings.json_limit_bytes.max(state.settings.clinical.attachment_max_bytes);
    let mut body = web::BytesMut::new();
    let mut payload = req.take_payload();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(req.error_response(ApiError::PayloadTooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let mut h = Sha256::new();
    h.update(req.method().as_str().as_bytes());
    h.update([0]);
    h.update(req.uri().path_and_query().map_or("", |p| p.as_str()).as_bytes());
    h.update([0]);
    h.update(&body);
    let fingerprint: [u8; 32] = h.finalize().into();
    req.set_payload(Payload::from(body));

    let stored = match idempotency::lookup_as(&state.pool, &claims, &key).await {
        Ok(s) => s,
        Err(e) => return Ok(req.error_response(ApiError::from(e))),
    };
    let Some(stored) = stored else {
        req.extensions_mut().insert(IdempotentWrite { key, fingerprint });
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    if stored.fingerprint != fingerprint {
        return Ok(req.error_response(ApiError::Validation {
            field: "Idempotency-Key".into(),
            rule: "was already used with another request (idempotency_key_reused)".into(),
        }));
    }
    let answer = match replay(&req, &state, &key).await {
        Ok(a) => a,
        Err(e) => return Ok(req.error_response(e)),
    };
    Ok(req.into_response(answer))
}

/// The stored answer, after the caller's session check, recorded as a read in the same
/// transaction as the look-up that returns it.
async fn replay(req: &ServiceRequest, state: &AppState, key: &str) -> Result<HttpResponse, ApiError> {
    let user = AuthUser::from_request(req.request(), &mut Payload::None).await?;
    let mut tx = db::begin(&state.pool, &user.claims()).await?;
    let stored = idempotency::lookup(&mut tx, key).await?.ok_or(ApiError::NotFound)?;
    let (table, column) = idempotency::SEALED_AS;
    let answer = state
        .crypto
        .keyring
        .open(table, column, stored.id, &stored.answer_enc)
        .map_err(|_| ApiError::Integrity { location: format!("{table}.{column}") })?;
    let mut event = AuditEvent::new(Action::Read, "idempotent_replay", Outcome::Success)
        .resource(stored.id)
        .reason(format!("answer replayed for a retried write (request {})", stored.request_id.unwrap_or_default()));
    event.patient_id = stored.patient_id;
    let ctx = request_meta(req.request()).context_for(&user.claims());
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    let status = StatusCode::from_u16(u16::try_from(stored.status).unwrap_or(200)).unwrap_or(StatusCode::OK);
    Ok(HttpResponse::build(status)
        .content_type(header::ContentType::json())
        .insert_header(("Idempotent-Replayed", "true"))
        .body(answer.to_vec()))
}
