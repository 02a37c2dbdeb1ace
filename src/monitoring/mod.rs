//! Privacy monitoring (docs/privacy-monitoring.md): every access in an organization's ledger
//! is explained by a relationship that held at the time (explain), or not; detectors flag
//! what a privacy officer should look at (detectors, with thresholds from config); the
//! engine runs both incrementally over the ledger from a watermark, off the request path;
//! the review services list alerts with their evidence and record decisions in the ledger;
//! the admin services keep the facts the detectors need (profiles), sealed like PHI.

pub mod config;
pub mod context;
pub mod detectors;
pub mod engine;
pub mod explain;
pub mod grants;
pub mod hours;
pub mod normalize;
pub mod profiles;
pub mod review;

/// Errors of the monitoring services (the HTTP edge maps them to `ApiError`).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// A request field broke its rule.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// No such alert, user or patient in the caller's organization (or the role may not see it).
    #[error("not found")]
    NotFound,
    /// The caller's role may not do this.
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Sealing or opening a field failed (no plaintext in it).
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl MonitorError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }
}
