//! `AuthError`: what the identity services answer. The HTTP layer maps it to `ApiError`
//! (status, stable code, message) in one place, `crate::error`; the variants carry exactly
//! what that answer needs and nothing of HTTP.

use super::password::PolicyViolation;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input that cannot be used, deliberately without saying which part (invite redemption).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid input: which field, which rule.
    #[error("{field}: {rule}")]
    Validation { field: String, rule: String },
    /// A new password breaks the password policy; every broken rule is listed.
    #[error("the password was rejected")]
    WeakPassword(Vec<PolicyViolation>),
    /// Missing, invalid or expired credentials. Deliberately says nothing more.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated but not allowed, with the stable code clients switch on.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such resource, or one the caller may not see.
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A database error; the edge classifies it (constraint table, availability).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A bug or an infrastructure failure.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AuthError {
    pub fn validation(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), rule: rule.into() }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// A unique violation (SQLSTATE 23505) answered as a conflict with `message`; any other
    /// database error unchanged.
    pub fn duplicate(e: sqlx::Error, message: &str) -> Self {
        if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") {
            Self::Conflict(message.to_owned())
        } else {
            Self::Database(e)
        }
    }
}

/// A domain type refused its input: the field and the rule (never the value).
impl From<crate::domain::DomainError> for AuthError {
    fn from(e: crate::domain::DomainError) -> Self {
        Self::validation(e.field().to_owned(), e.rule().to_string())
    }
}
