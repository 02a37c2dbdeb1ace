//! Building and running the HTTP server: `Application::build` binds its own listener (port 0
//! in tests) so the caller learns the real address before serving.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::{Compress, Condition, from_fn};
use actix_web::{App, HttpRequest, HttpServer, web};
use sqlx::PgPool;

use crate::audit::signing::LedgerSigner;
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::ApiError;
use crate::keys::RootKeys;

pub use crate::state::{AppState, JWT_AUDIENCE, JWT_ISSUER, StartupError};

pub struct Application {
    port: u16,
    server: Server,
    sequencer: Option<tokio::task::JoinHandle<()>>,
    /// The outbox sender (patient invites), `crate::auth::outbox_sender`.
    outbox: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Binds `settings.bind` and prepares the server (not yet running), on the real clock.
    pub async fn build(settings: Settings, pool: PgPool, keys: RootKeys) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, pool, keys, Arc::new(Clock::system())).await
    }

    /// [`Application::build`] with a given clock (tests keep a handle to move it forward).
    pub async fn build_with_clock(
        settings: Settings,
        pool: PgPool,
        keys: RootKeys,
        clock: Arc<Clock>,
    ) -> Result<Self, StartupError> {
        let (state, ledger_signer) = AppState::load(settings, pool, keys, clock).await?;
        Ok(Self::from_state(state, ledger_signer)?)
    }

    fn from_state(state: AppState, ledger_signer: LedgerSigner) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(state.settings.bind)?;
        let port = listener.local_addr()?.port();
        let _ = crate::metrics::handle();
        let tls = match (&state.settings.tls_cert, &state.settings.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            _ => None,
        };
        let shutdown = state.settings.shutdown_timeout;
        let client_request_timeout = state.settings.client_request_timeout;
        let auth_rate = crate::middleware::rate_limit::WindowBackend::default();
        // Every server is a sequencer candidate; the advisory lock picks one leader.
        let sequencer = state.settings.ledger.sequencer_in_server.then(|| {
            let opts = (*state.pool.connect_options()).clone();
            tokio::spawn(crate::audit::sequencer::run_candidate(opts, ledger_signer, state.settings.ledger.clone()))
        });
        let state = web::Data::from(Arc::new(state));
        let outbox = crate::auth::outbox_sender::spawn(state.clone().into_inner())?;
        let server = HttpServer::new(move || {
            let json_limit = state.settings.json_limit_bytes;
            let per_minute = state.settings.auth.rate_per_minute;
            let auth_limiter = crate::middleware::rate_limit::limiter(auth_rate.clone(), per_minute);
            let account_limiter = crate::middleware::rate_limit::account_limiter(auth_rate.clone(), per_minute);
            App::new()
                .app_data(state.clone())
                .app_data(web::JsonConfig::default().limit(json_limit).error_handler(json_error))
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::BadRequest(format!("invalid query string: {}", safe_reason(&e.to_string()))).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()))
                .wrap(Condition::new(!state.settings.cors_origins.is_empty(), cors(&state.settings.cors_origins)))
                .wrap(from_fn(crate::middleware::idempotency::idempotency))
                .wrap(Compress::default())
                .wrap(from_fn(crate::middleware::outcomes::audit_outcomes))
                .wrap(from_fn(crate::middleware::request_context))
                .configure(|cfg| crate::routes::configure(cfg, auth_limiter.clone(), account_limiter))
                // The console (`/console/`) shares the API's per-IP sign-in limit.
                .configure(|cfg| crate::console::configure(cfg, auth_limiter))
                .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::NotFound) }))
        })
        .shutdown_timeout(shutdown.as_secs())
        .client_request_timeout(client_request_timeout);
        let server = match tls {
            Some(cfg) => server.listen_rustls_0_23(listener, cfg)?,
            None => server.listen(listener)?,
        }
        .run();
        Ok(Self { port, server, sequencer, outbox })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT (actix handles both: in-flight requests finish within the
    /// shutdown timeout, then the future resolves).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let res = self.server.await;
        // Aborting mid-batch is safe: the open transaction dies with its connection.
        if let Some(task) = self.sequencer {
            task.abort();
        }
        // A delivery cut short is delivered again after its lease: at worst a second copy.
        self.outbox.abort();
        res
    }
}

fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::PayloadTooLarge,
        E::ContentType => ApiError::UnsupportedMediaType("expected Content-Type: application/json".into()),
        E::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {}", safe_reason(&e.to_string()))),
        _ => ApiError::BadRequest("invalid JSON body".into()),
    };
    api.into()
}

/// serde messages quote offending *values* (`invalid type: string "…"`), which could be
/// PHI; keep only the part before any quote.
fn safe_reason(msg: &str) -> String {
    let cut = msg.find(['"', '`', '\'']).unwrap_or(msg.len());
    let s = msg[..cut].trim().trim_end_matches(':').trim();
    if s.is_empty() { "malformed".to_owned() } else { s.to_owned() }
}

fn cors(origins: &[String]) -> Cors {
    // Only installed when origins are configured: with none, no CORS headers at all and
    // browsers refuse cross-origin calls.
    let mut c = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::HeaderName::from_static(crate::middleware::idempotency::IDEMPOTENCY_KEY_HEADER),
            actix_web::http::header::HeaderName::from_static(crate::middleware::REQUEST_ID_HEADER),
        ])
        .expose_headers([crate::middleware::REQUEST_ID_HEADER, crate::middleware::CORRELATION_ID_HEADER])
        .max_age(600);
    for o in origins {
        c = c.allowed_origin(o);
    }
    c
}

fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("CUSTOS_TLS_CERT {}: {e}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("CUSTOS_TLS_KEY {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn safe_reason_drops_quoted_values() {
        let r = super::safe_reason("invalid type: string \"Jane Doe 1970-01-01\", expected u32 at line 1");
        assert!(!r.contains("Jane"));
        assert_eq!(r, "invalid type: string");
    }
}
