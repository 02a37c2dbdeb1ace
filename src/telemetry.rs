//! Logging: JSON lines via `tracing-subscriber`, one span per request carrying its id.
//! Nothing here logs bodies, query strings or headers other than the request id.

use tracing_subscriber::EnvFilter;

/// Installs the global JSON subscriber (idempotent: later calls are ignored, as in tests).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `spawn_blocking` that keeps the caller's span, so logs from CPU-bound work (password
/// hashing, bulk sealing) still carry the request id.
pub async fn spawn_blocking_in_span<F, R>(f: F) -> Result<R, tokio::task::JoinError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await
}
