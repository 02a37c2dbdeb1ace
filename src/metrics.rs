//! Prometheus metrics: request counts and latency histograms by method, route pattern and
//! status, database pool gauges and the audit ledger's health. One process-wide recorder,
//! rendered on a listener of its own (`CUSTOS_METRICS_BIND`, off unless set), never on the
//! API port.
//!
//! What a scrape can learn is bounded and names no tenant: the method label is one of the
//! methods the API answers or `OTHER`, the route label a route pattern or `unmatched`, the
//! status a status code; no label carries an organization, ledger or user id unless the
//! operator opts in with `CUSTOS_METRICS_TENANT_LABELS=on` (then the last checkpoint size of
//! each ledger, i.e. each organization's event count, is exported by ledger id).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{App, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use uuid::Uuid;

/// Ledger metric names (sequencer and checkpointer), here so the ledger can use them without
/// this module naming the ledger.
pub const EVENTS_INTEGRATED: &str = "custos_audit_events_integrated_total";
pub const INBOX_DEPTH: &str = "custos_audit_inbox_depth";
pub const LAG_SECONDS: &str = "custos_audit_integration_lag_seconds";
pub const IS_LEADER_GAUGE: &str = "custos_audit_sequencer_leader";
pub const LAST_CHECKPOINT_SIZE: &str = "custos_audit_last_checkpoint_size";
pub const CHECKPOINTS_SIGNED: &str = "custos_audit_checkpoints_signed_total";
pub const MIRROR_FAILURES: &str = "custos_audit_checkpoint_mirror_failures_total";
/// Witness cosigning (`audit::witnessing`).
pub const COSIGNATURES: &str = "custos_audit_cosignatures_total";
pub const WITNESS_FAILURES: &str = "custos_audit_witness_failures_total";
pub const FORK_ALERTS: &str = "custos_audit_witness_fork_alerts_total";
/// The outbox sender (`auth::outbox_sender`): deliveries, failed attempts (label `class`),
/// abandoned messages.
pub const OUTBOX_SENT: &str = "custos_outbox_messages_sent_total";
pub const OUTBOX_FAILURES: &str = "custos_outbox_delivery_failures_total";
pub const OUTBOX_ABANDONED: &str = "custos_outbox_messages_abandoned_total";
/// `custos witness` (`audit::witness`).
pub const WITNESS_INCONSISTENT: &str = "custos_witness_inconsistent_checkpoints_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static TENANT_LABELS: AtomicBool = AtomicBool::new(false);

pub const HTTP_REQUESTS: &str = "custos_http_requests_total";
pub const HTTP_DURATION: &str = "custos_http_request_duration_seconds";
pub const DB_POOL_SIZE: &str = "custos_db_pool_connections";
pub const DB_POOL_IDLE: &str = "custos_db_pool_idle_connections";
/// Unix time of the last checkpoint this process signed (no label: alert when it goes stale).
pub const LAST_CHECKPOINT_TIME: &str = "custos_audit_last_checkpoint_timestamp_seconds";

/// Methods the API answers; anything else is counted as `OTHER`.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Installs the recorder the first time; returns the handle (None if another recorder won).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &buckets)
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            Some(recorder)
        })
        .as_ref()
}

/// HELP (and so TYPE) for every metric the process can emit.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route pattern and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency by method, route pattern and status");
    describe_gauge!(DB_POOL_SIZE, "Open database connections");
    describe_gauge!(DB_POOL_IDLE, "Idle database connections");
    describe_counter!(EVENTS_INTEGRATED, "Audit events moved from the inbox into the ledger by this process");
    describe_gauge!(INBOX_DEPTH, "Audit events waiting in the inbox (all organizations)");
    describe_gauge!(LAG_SECONDS, Unit::Seconds, "Age of the oldest audit event waiting in the inbox");
    describe_gauge!(IS_LEADER_GAUGE, "1 while this process holds the sequencer leadership, else 0");
    describe_counter!(CHECKPOINTS_SIGNED, "Ledger checkpoints signed by this process");
    describe_counter!(MIRROR_FAILURES, "Signed checkpoints that could not be written to the checkpoint mirror");
    describe_gauge!(LAST_CHECKPOINT_TIME, Unit::Seconds, "Unix time of the last checkpoint signed by this process");
    describe_counter!(COSIGNATURES, "Witness cosignatures obtained and stored by this process");
    describe_counter!(WITNESS_FAILURES, "Witness submissions that failed (unreachable, error) and will be retried");
    describe_counter!(
        FORK_ALERTS,
        "Checkpoints a witness refused as inconsistent with what it cosigned (possible fork)"
    );
    describe_counter!(
        WITNESS_INCONSISTENT,
        "custos witness: validly signed checkpoints refused as inconsistent with the cosigned history"
    );
    describe_counter!(OUTBOX_SENT, "Outbox messages (patient invite codes) delivered by this process");
    describe_counter!(OUTBOX_FAILURES, "Outbox delivery attempts that failed, by class (retried with back-off)");
    describe_counter!(OUTBOX_ABANDONED, "Outbox messages given up on (permanent refusal or the last attempt)");
    describe_gauge!(
        LAST_CHECKPOINT_SIZE,
        "Size of each ledger's last signed checkpoint (operator opt-in: names ledgers)"
    );
}

/// Applies the operator's choice about tenant labels (once, at start-up).
pub fn configure(tenant_labels: bool) {
    TENANT_LABELS.store(tenant_labels, Ordering::Relaxed);
}

/// The method label: a known method, else `OTHER` (a client chooses the method).
pub fn method_label(method: &str) -> &'static str {
    METHODS.iter().find(|m| **m == method).copied().unwrap_or("OTHER")
}

/// The route label: a matched route pattern (which never holds ids), else `unmatched`.
pub fn route_label(pattern: Option<&str>) -> &str {
    match pattern {
        Some(p) if p.starts_with('/') => p,
        _ => "unmatched",
    }
}

/// Records one finished request. `route` is the matched pattern, if any (never the raw path,
/// which would carry ids and explode cardinality).
pub fn record_request(method: &str, route: Option<&str>, status: u16, seconds: f64) {
    let labels = [
        ("method", method_label(method).to_owned()),
        ("route", route_label(route).to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(seconds);
}

/// Records a signed checkpoint. The per-ledger size (an organization's event count, by
/// ledger id) only when the operator opted in.
pub fn record_checkpoint(ledger: Uuid, size: u64) {
    metrics::counter!(CHECKPOINTS_SIGNED).increment(1);
    metrics::gauge!(LAST_CHECKPOINT_TIME).set(chrono::Utc::now().timestamp() as f64);
    if TENANT_LABELS.load(Ordering::Relaxed) {
        metrics::gauge!(LAST_CHECKPOINT_SIZE, "ledger" => ledger.to_string()).set(size as f64);
    }
}

/// The Prometheus text of this process, pool gauges refreshed first.
pub async fn render(pool: Option<&sqlx::PgPool>) -> Option<String> {
    let handle = handle()?;
    if let Some(pool) = pool {
        metrics::gauge!(DB_POOL_SIZE).set(f64::from(pool.size()));
        metrics::gauge!(DB_POOL_IDLE).set(pool.num_idle() as f64);
    }
    Some(handle.render())
}

/// Starts the metrics listener on `bind` (its own socket, one worker, `GET /metrics` only)
/// and returns the bound address; the server runs until the process ends.
pub fn serve(bind: SocketAddr, pool: Option<sqlx::PgPool>) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    let _ = handle();
    let pool = web::Data::new(pool);
    let server = HttpServer::new(move || {
        App::new().app_data(pool.clone()).route(
            "/metrics",
            web::get().to(|pool: web::Data<Option<sqlx::PgPool>>| async move {
                match render(pool.as_ref().as_ref()).await {
                    Some(body) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body),
                    None => HttpResponse::ServiceUnavailable().finish(),
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("get"), "OTHER");
        assert_eq!(method_label("PROPFIND"), "OTHER");
        assert_eq!(route_label(Some("/v1/patients/{id}")), "/v1/patients/{id}");
        assert_eq!(route_label(None), "unmatched");
        assert_eq!(route_label(Some("<middleware>")), "unmatched");
    }
}
