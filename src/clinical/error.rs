//! `ClinicalError`: what the clinical services answer. The HTTP layer maps it to `ApiError`
//! (status, stable code, message) in one place, `crate::error`; the variants carry exactly
//! what that answer needs and nothing of HTTP. The audited path ([`super::Req::finish`])
//! records a failed request with the code of that answer, so a refusal's reason code is the
//! one the client sees.

use crate::crypto::CryptoError;
use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum ClinicalError {
    /// Well-formed but invalid input: which field, which rule (never the value).
    #[error("{field}: {rule}")]
    Validation { field: String, rule: String },
    /// The session check refused the caller (missing, revoked, idle or expired session).
    /// Deliberately says nothing more.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated but not allowed, with the stable code clients switch on (a restricted
    /// session, a role that may not do this, the break-glass limit).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such record, or one the caller may not see: the two look the same.
    #[error("not found")]
    NotFound,
    /// The request conflicts with the record's current state (duplicate, wrong status, no
    /// refills left).
    #[error("{0}")]
    Conflict(String),
    /// An attachment larger than allowed.
    #[error("request body too large")]
    PayloadTooLarge,
    /// An attachment of a media type that is not accepted (the message lists the allowed).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The database is unavailable, or the request lost a race it may win on a retry.
    #[error("service unavailable")]
    Unavailable,
    /// A stored sealed value failed to open (altered, moved to another row, or its key is
    /// missing). `location` is `table.column`, never the value.
    #[error("a stored value failed its integrity check")]
    Integrity { location: String },
    /// Sealing a value failed (no current data key): a failure of the server.
    #[error("sealing a value failed")]
    Crypto(#[source] CryptoError),
    /// A database error; the edge classifies it (constraint table, availability).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A bug or an infrastructure failure.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ClinicalError {
    pub fn validation(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), rule: rule.into() }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The database could not be reached or the transaction lost a race: a 503 recorded once
    /// the database is back, not now.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable => true,
            Self::Database(e) => crate::db::is_unavailable(e),
            _ => false,
        }
    }
}

/// A domain type refused its input: the field and the rule (never the value).
impl From<DomainError> for ClinicalError {
    fn from(e: DomainError) -> Self {
        Self::validation(e.field().to_owned(), e.rule().to_string())
    }
}
