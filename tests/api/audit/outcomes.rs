//! Every request to a route that touches patient data, identity or the ledger leaves exactly
//! one event, whatever its outcome — including the refusals that used to leave none (404 on
//! an access report, an invite, another organization's ledger; 409 on a duplicate user) and
//! the checkpoint and proof reads.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::world::Actor;
use super::{checkpoint, drain, setup};
use crate::common::TestApp;

/// Sends a request; returns its status and the (action, outcome, reason) of every event
/// recorded under the server's id for it.
async fn events_of(
    app: &TestApp,
    method: &str,
    path: &str,
    who: &Actor,
    body: Option<Value>,
) -> (StatusCode, Vec<(String, String, Option<String>)>) {
    let mut req = app.client.request(method.parse().unwrap(), app.url(path)).bearer_auth(&who.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let id: Uuid = resp.headers()["x-request-id"].to_str().unwrap().parse().unwrap();
    let _ = resp.bytes().await;
    let events = sqlx::query_as(
        "SELECT action::text, outcome::text, reason FROM audit_inbox WHERE request_id = $1 \
         UNION ALL SELECT action::text, outcome::text, reason FROM audit_log WHERE request_id = $1",
    )
    .bind(id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    (status, events)
}

#[tokio::test]
async fn refusals_that_used_to_leave_no_record_leave_exactly_one() {
    let (app, w) = setup().await;
    drain(&app).await;
    let report = format!("/v1/patients/{}/access-report", w.p1);
    let b = w.org_b;
    let denied: Vec<(&Actor, &str, String, Option<Value>, StatusCode)> = vec![
        (&w.pa2, "GET", report.clone(), None, StatusCode::NOT_FOUND),
        (&w.ca2, "GET", report.clone(), None, StatusCode::NOT_FOUND),
        (&w.ab, "GET", report.clone(), None, StatusCode::NOT_FOUND),
        (&w.ab, "POST", format!("/v1/patients/{}/invite", w.p1), Some(json!({})), StatusCode::NOT_FOUND),
        (&w.ua, "GET", format!("/v1/audit/events?ledger={b}"), None, StatusCode::NOT_FOUND),
        (&w.ua, "GET", format!("/v1/audit/export?ledger={b}"), None, StatusCode::NOT_FOUND),
        (&w.ua, "GET", format!("/v1/audit/checkpoint?ledger={b}"), None, StatusCode::NOT_FOUND),
        (
            &w.ua,
            "GET",
            format!("/v1/audit/proofs/inclusion?ledger={b}&index=0&tree_size=1"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (&w.ua, "GET", format!("/v1/audit/proofs/consistency?ledger={b}&from=1&to=1"), None, StatusCode::NOT_FOUND),
    ];
    for (who, m, path, body, status) in denied {
        let (s, events) = events_of(&app, m, &path, who, body).await;
        assert_eq!(s, status, "{} {m} {path}", who.name);
        assert_eq!(events.len(), 1, "{} {m} {path}: {events:?}", who.name);
        assert_eq!(events[0].1, "denied", "{} {m} {path}: {events:?}", who.name);
        let reason = events[0].2.clone().unwrap_or_default();
        assert!(reason.starts_with("not_found ("), "a stable code first: {reason}");
        assert!(!reason.contains(&w.org_b.to_string()), "the route pattern, not the path: {reason}");
    }

    // A duplicate user: 409, once.
    let user = json!({ "email": "dup@a.example", "role": "clinician", "display_name": "Dup" });
    let (s, events) = events_of(&app, "POST", "/v1/admin/users", &w.aa, Some(user.clone())).await;
    assert_eq!((s, events.len()), (StatusCode::CREATED, 1), "{events:?}");
    let (s, events) = events_of(&app, "POST", "/v1/admin/users", &w.aa, Some(user)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].0.as_str(), events[0].1.as_str()), ("create", "denied"));
    assert!(events[0].2.as_deref().unwrap_or_default().starts_with("conflict (POST /v1/admin/users → 409)"));

    // Checkpoint and proof reads are accesses to the ledger, recorded as reads.
    drain(&app).await;
    let size = checkpoint(&app, w.org_a, &w.ua).await.size;
    let a = w.org_a;
    for path in [
        format!("/v1/audit/checkpoint?ledger={a}"),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index=0&tree_size={size}"),
        format!("/v1/audit/proofs/consistency?ledger={a}&from=1&to={size}"),
    ] {
        let (s, events) = events_of(&app, "GET", &path, &w.ua, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(events.len(), 1, "{path}: {events:?}");
        assert_eq!((events[0].0.as_str(), events[0].1.as_str()), ("read", "success"), "{path}");
    }
}
