//! Prometheus metrics: request counts and latency histograms by route pattern and status,
//! and database pool gauges. One process-wide recorder; `/metrics` renders it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

pub const HTTP_REQUESTS: &str = "custos_http_requests_total";
pub const HTTP_DURATION: &str = "custos_http_request_duration_seconds";
pub const DB_POOL_SIZE: &str = "custos_db_pool_connections";
pub const DB_POOL_IDLE: &str = "custos_db_pool_idle_connections";

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
            metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route pattern and status");
            metrics::describe_histogram!(HTTP_DURATION, metrics::Unit::Seconds, "HTTP request latency");
            metrics::describe_gauge!(DB_POOL_SIZE, "Open database connections");
            metrics::describe_gauge!(DB_POOL_IDLE, "Idle database connections");
            Some(recorder)
        })
        .as_ref()
}

/// Records one finished request. `route` is the matched pattern (never the raw path, which
/// would carry ids and explode cardinality).
pub fn record_request(method: &str, route: &str, status: u16, seconds: f64) {
    let labels = [("method", method.to_owned()), ("route", route.to_owned()), ("status", status.to_string())];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(seconds);
}
