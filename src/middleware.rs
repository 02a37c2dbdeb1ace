//! The request wrapper every route goes through: request id (accepted from `X-Request-Id`
//! when it is a UUID, else generated; echoed back), a tracing span, one JSON access-log line
//! (method, route pattern, status, latency, request id — never bodies or query strings),
//! metrics, security headers, and a JSON body for any error response that lacks one.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::ApiError;

/// The request's id, stored in request extensions for handlers and audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub Uuid);

pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
        .unwrap_or_else(Uuid::new_v4);
    req.extensions_mut().insert(RequestId(id));
    let method = req.method().as_str().to_owned();
    let span = tracing::info_span!("request", request_id = %id);

    // (No clone of the HttpRequest may be alive here: routing needs it uniquely owned.)
    let res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            // Only inner middleware fails this way (e.g. CORS refusing an origin); actix turns
            // the error into its response.
            let status = e.as_response_error().status_code().as_u16();
            crate::metrics::record_request(&method, None, status, started.elapsed().as_secs_f64());
            span.in_scope(|| tracing::info!(method = %method, status, "request refused by middleware"));
            return Err(e);
        }
    };
    let mut res = json_error_body(res);

    let status = res.status().as_u16();
    let pattern = res.request().match_pattern();
    let elapsed = started.elapsed();
    crate::metrics::record_request(&method, pattern.as_deref(), status, elapsed.as_secs_f64());
    let route = pattern.as_deref().unwrap_or("<unmatched>");
    span.in_scope(|| {
        tracing::info!(method = %method, route = %route, status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request")
    });

    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        h.insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
    let security = [
        (header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"),
    ];
    for (name, value) in security {
        h.insert(name, HeaderValue::from_static(value));
    }
    // API responses may carry PHI: never cache them anywhere.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// actix answers some errors itself (405, 413 from payload limits, ...) with a text or empty
/// body; rewrite any 4xx/5xx that is not already JSON into the standard error shape.
fn json_error_body(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let err = match status.as_u16() {
        400 => ApiError::BadRequest("malformed request".into()),
        401 => ApiError::Unauthorized,
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed,
        413 => ApiError::PayloadTooLarge,
        415 => ApiError::UnsupportedMediaType("unsupported content type".into()),
        s if s >= 500 => ApiError::Internal(anyhow::anyhow!("unhandled {s} response")),
        _ => ApiError::BadRequest("request rejected".into()),
    };
    let mut new = err.error_response();
    // Keep the original status (e.g. 405) and headers such as Allow / Retry-After.
    *new.status_mut() = status;
    for (k, v) in res.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            new.headers_mut().insert(k.clone(), v.clone());
        }
    }
    let (req, _) = res.into_parts();
    ServiceResponse::new(req, new.map_into_boxed_body())
}
