//! `ApiError`: the one error type of the HTTP layer. Each variant maps to a status code and a
//! stable machine-readable `code`; the body is always `{"error": {"code", "message"}}`.
//! Messages are safe to show: never PHI, never a secret, never an internal detail. 5xx causes
//! are logged (with the request id) and replaced by a generic message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (bad JSON, bad query string, bad header).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid input: which field, which rule.
    #[error("{field}: {rule}")]
    Validation { field: String, rule: String },
    /// A new password breaks the password policy; every broken rule is listed.
    #[error("the password was rejected: {}", .0.iter().map(|v| v.message()).collect::<Vec<_>>().join(" "))]
    WeakPassword(Vec<crate::auth::password::PolicyViolation>),
    /// Missing, invalid or expired credentials. Deliberately says nothing more.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated but not allowed (only where hiding existence is not needed).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such resource — or one the caller may not see: the two look the same.
    #[error("not found")]
    NotFound,
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the current state (duplicate, wrong status, limit reached).
    #[error("{0}")]
    Conflict(String),
    /// Body larger than allowed.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Wrong or missing Content-Type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many requests; retry after the given seconds.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (the database) is unavailable, or the request lost a race it may win on a
    /// retry (serialization failure, deadlock): 503 with `Retry-After`.
    #[error("service unavailable")]
    Unavailable,
    /// A stored sealed value failed to open (altered, moved to another row, or its key is
    /// missing). `location` is `table.column`, never the value; the failure is audited.
    #[error("a stored value failed its integrity check")]
    Integrity { location: String },
    /// A bug or an infrastructure failure; details go to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// `Retry-After` of a 503: long enough for a pooled connection to be replaced or a database
/// fail-over to settle, short enough that a client retrying once loses little.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    violations: Option<&'a [crate::auth::password::PolicyViolation]>,
}

impl ApiError {
    pub fn validation(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), rule: rule.into() }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation { .. } => "validation_failed",
            Self::WeakPassword(_) => "password_policy",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { code, .. } => code,
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Integrity { .. } => "data_integrity",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation { .. } | Self::WeakPassword(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Integrity { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(e) = self {
            // The cause chain may name tables or constraints, never request bodies.
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        if let Self::Integrity { location } = self {
            tracing::error!(location = %location, "sealed value failed its integrity check");
        }
        let field = match self {
            Self::Validation { field, .. } => Some(field.as_str()),
            Self::WeakPassword(_) => Some("password"),
            _ => None,
        };
        let violations = match self {
            Self::WeakPassword(v) => Some(v.as_slice()),
            _ => None,
        };
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            Self::RateLimited { retry_after_secs } => {
                resp.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            Self::Unavailable => {
                resp.insert_header(("Retry-After", UNAVAILABLE_RETRY_AFTER_SECS.to_string()));
            }
            _ => {}
        }
        resp.json(Body { error: Inner { code: self.code(), message: self.to_string(), field, violations } })
    }
}

/// A domain type refused its input: 422 naming the field and the rule (never the value).
impl From<crate::domain::DomainError> for ApiError {
    fn from(e: crate::domain::DomainError) -> Self {
        Self::validation(e.field().to_owned(), e.rule().to_string())
    }
}

/// Database errors: constraint violations are the client's fault (4xx) and are mapped here,
/// in one place, by SQLSTATE; everything else is an internal or availability error.
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable or transaction lost a race: 503");
            return Self::Unavailable;
        }
        match &e {
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or("constraint").to_owned();
                match db.code().as_deref() {
                    Some("23505") => {
                        // The constraint name describes the schema: logs only, never the client.
                        tracing::info!(constraint = %constraint, "unique violation answered with 409");
                        Self::Conflict("already exists".into())
                    }
                    Some("23514") => Self::validation(constraint, "violates a check constraint"),
                    Some("23503") => Self::validation(constraint, "refers to a record that does not exist"),
                    Some("23502") => Self::validation("field", "a required value is missing"),
                    Some("22P02") | Some("22007") | Some("22008") | Some("22003") => {
                        Self::BadRequest("a value has an invalid format".into())
                    }
                    // Row-level security refused the row: indistinguishable from absence.
                    Some("42501") => Self::NotFound,
                    _ => Self::Internal(e.into()),
                }
            }
            sqlx::Error::RowNotFound => Self::NotFound,
            _ => Self::Internal(e.into()),
        }
    }
}
