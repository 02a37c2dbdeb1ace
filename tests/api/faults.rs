//! Faults answer honestly: a request whose database connection PostgreSQL ended (SQLSTATE
//! 57P01, then a closed socket) is a 503 with `Retry-After`, never a 500 or a refusal, and
//! leaves an `error` event once the database takes writes again.

use std::time::Duration;

use reqwest::StatusCode;

use crate::clinical::world::{self, Actor};
use crate::common::{TestApp, spawn_app};

/// Ends every server connection to the test database, as an administrator's
/// `pg_terminate_backend` (or a PostgreSQL restart) would: the pool still holds them.
async fn terminate_server_connections(app: &TestApp) {
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'custos' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(!ended.is_empty(), "the server had pooled connections to end");
}

/// (outcome, reason) of `who`'s events, waiting up to 10 s for one with `outcome`.
async fn wait_for_event(app: &TestApp, who: &Actor, outcome: &str) -> Vec<(String, Option<String>)> {
    for _ in 0..100 {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT outcome::text, reason FROM audit_inbox WHERE actor_id = $1 AND outcome::text = $2 \
             UNION ALL SELECT outcome::text, reason FROM audit_log WHERE actor_id = $1 AND outcome::text = $2",
        )
        .bind(who.id)
        .bind(outcome)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
        if !rows.is_empty() {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Vec::new()
}

async fn assert_unavailable(app: &TestApp, who: &Actor, path: &str) {
    let r = app.client.get(app.url(path)).bearer_auth(&who.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
    assert_eq!(r.headers()["retry-after"], "2", "{path}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{path}: {body}");
}

#[tokio::test]
async fn a_connection_postgres_ended_is_a_503_with_retry_after_and_an_error_event() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    // The clinical path (session check pipelined into the request's first round trip).
    assert_eq!(world::call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await.0, StatusCode::OK);
    terminate_server_connections(&app).await;
    assert_unavailable(&app, &w.ca1, &format!("/v1/patients/{}", w.p1)).await;
    let errors = wait_for_event(&app, &w.ca1, "error").await;
    assert_eq!(errors.len(), 1, "one error event for the failed chart read: {errors:?}");
    assert!(
        wait_for_event(&app, &w.ca1, "denied").await.is_empty(),
        "a failed session re-check is a failure, not a refusal"
    );
    // Served again once the pool has fresh connections.
    let mut ok = false;
    for _ in 0..20 {
        if world::call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await.0 == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the server recovers");

    // A route whose extractor checks the session on its own round trip, and the ledger.
    for (who, path) in [(&w.aa, "/v1/me".to_owned()), (&w.ua, format!("/v1/audit/checkpoint?ledger={}", w.org_a))] {
        terminate_server_connections(&app).await;
        assert_unavailable(&app, who, &path).await;
        let errors = wait_for_event(&app, who, "error").await;
        assert_eq!(errors.len(), 1, "{path}: {errors:?}");
        let reason = errors[0].1.clone().unwrap_or_default();
        assert!(reason.starts_with("unavailable (GET "), "{path}: {reason}");
        assert!(wait_for_event(&app, who, "denied").await.is_empty(), "{path}: not a refusal");
    }
}
