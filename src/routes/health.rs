//! Operations endpoints: liveness and readiness (database reachable, schema and policies
//! current). Metrics are not here: they have a listener of their own (`crate::metrics`).

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
/// condition (a backlog must not take servers out of the load balancer). Nothing about any
/// one organization (no checkpoint size: that is an organization's event count). A login
/// that may not read the ledger state (the web login of a split installation) says so.
pub async fn ledger_details(state: &AppState) -> serde_json::Value {
    let probe = async {
        let mut conn = state.pool.acquire().await?;
        // Asked first, so that a probe by the web login is not a refused SET ROLE in the
        // database's log every few seconds.
        let may: bool =
            sqlx::query_scalar("SELECT pg_has_role('custos_sequencer', 'MEMBER')").fetch_one(&mut *conn).await?;
        if !may {
            return Ok(None);
        }
        crate::audit::sequencer::health(&mut conn).await.map(Some)
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(None)) => json!({ "error": "not visible to this login (custos sequencer reports it)" }),
        Ok(Ok(Some(h))) => json!({
            "inbox_depth": h.inbox_depth,
            "lag_seconds": h.lag_seconds,
            "unsigned_entries": h.unsigned_entries,
            "last_checkpoint_at": h.last_checkpoint_at,
            "leader_here": h.leader_here,
        }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: ledger status");
            json!({ "error": "unavailable" })
        }
        Err(_) => json!({ "error": "timeout" }),
    }
}
