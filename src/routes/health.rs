//! Operations endpoints: liveness, readiness (database reachable, schema and policies
//! current) and Prometheus metrics.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

/// The process is alive (no dependencies checked).
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready to serve: the database answers and its migrations and policies are this build's.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let check = tokio::time::timeout(Duration::from_secs(2), crate::db::migrate::status(&state.pool)).await;
    match check {
        Ok(Ok(schema)) if schema.ready() => {
            let ledger = ledger_details(&state).await;
            HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok", "schema": schema, "ledger": ledger }))
        }
        Ok(Ok(schema)) => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not_ready", "database": "ok", "schema": schema })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database error");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "not_ready", "database": "unreachable" }))
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({ "status": "not_ready", "database": "timeout" })),
    }
}

/// Inbox depth, integration lag and sequencer leadership: informative, not a readiness
/// condition (a backlog must not take servers out of the load balancer).
async fn ledger_details(state: &AppState) -> serde_json::Value {
    let probe = async {
        let mut conn = state.pool.acquire().await?;
        crate::audit::sequencer::health(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(h)) => json!(h),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: ledger status");
            json!({ "error": "unavailable" })
        }
        Err(_) => json!({ "error": "timeout" }),
    }
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let Some(handle) = crate::metrics::handle() else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    // Refreshes the inbox depth gauge (the sequencer sets lag and checkpoint sizes itself).
    let _ = ledger_details(&state).await;
    metrics::gauge!(crate::metrics::DB_POOL_SIZE).set(f64::from(state.pool.size()));
    metrics::gauge!(crate::metrics::DB_POOL_IDLE).set(state.pool.num_idle() as f64);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render())
}
