//! Logging via `tracing-subscriber`, on stderr (stdout is a command's output). One span per
//! request carrying its id. Nothing here logs bodies, query strings or headers other than the
//! request id.
//!
//! - stderr not a terminal (a service manager, a container, a pipe): every line is JSON,
//!   fatal errors included ([`fatal`]).
//! - stderr a terminal (an operator running a command): short human lines
//!   (`WARN message key=value`), so a command's own output on stdout (bootstrap's one-time
//!   password, verify's report) is never mixed with log records.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (idempotent: later calls are ignored, as in tests).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.compact().without_time().with_target(false).try_init()
    } else {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    };
}

/// Reports the error that ends the process, in the same format as every other line: a JSON
/// record (`level: ERROR`, `exit_code`) when stderr is not a terminal, a short line when it
/// is. Works before the configuration could be read (the subscriber is then installed here).
pub fn fatal(message: &str, exit_code: u8) {
    if !tracing::dispatcher::has_been_set() {
        init("error");
    }
    tracing::error!(exit_code, "{message}");
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
