//! The clinical API checks the caller's session in the first round trip of the request's own
//! transaction (`auth::Caller`) rather than before the handler: the answers must be exactly
//! those of the other routes — 401 for a session that is not live or a token that no longer
//! matches the account, 403 for a restricted session — with the denial recorded, no
//! success event, and nothing written.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::world::{self, Actor, call, events};
use crate::common::{TestApp, spawn_app};

async fn set(app: &TestApp, sql: &'static str, user: &Actor) {
    sqlx::query(sql).bind(user.id).execute(&app.pool).await.unwrap();
}

async fn allergies(app: &TestApp, patient: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM allergies WHERE patient_id = $1")
        .bind(patient)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Successful chart reads of `who`, as the audit tables hold them.
async fn chart_reads(app: &TestApp, who: &Actor) -> usize {
    events(app, who.id).await.iter().filter(|(a, r, o, _, _)| a == "read" && r == "chart" && o == "success").count()
}

/// Clinical events of `who` (anything but the denial records of refused tokens and sessions).
async fn clinical_events(app: &TestApp, who: &Actor) -> usize {
    events(app, who.id).await.iter().filter(|(a, _, _, _, _)| a != "security").count()
}

/// Asserts a refused chart read and a refused write, each with its denial recorded and
/// nothing else: no success event, no row.
async fn refused(app: &TestApp, who: &Actor, patient: Uuid, status: StatusCode, code: &str, reason: &str) {
    let (reads, rows, clinical) =
        (chart_reads(app, who).await, allergies(app, patient).await, clinical_events(app, who).await);
    let ids = || async {
        sqlx::query_scalar::<_, i64>("SELECT last_value FROM audit_inbox_id_seq").fetch_one(&app.pool).await.unwrap()
    };
    let before = ids().await;
    let (s, b) = call(app, "GET", &format!("/v1/patients/{patient}"), who, None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{} reads the chart: {b}", who.name);
    // The chart sends its reads and its audit INSERT in the same round trip as the session
    // check: the check stops them in the database, so the INSERT never even drew an id (a
    // sequence does not roll back). The one id drawn is the denial record's.
    assert_eq!(ids().await - before, 1, "{}: nothing after the session check ran", who.name);
    assert!(b.get("given_name").is_none() && b.get("allergies").is_none(), "no chart content in a refusal: {b}");
    let allergy = json!({ "substance": format!("latex {}", Uuid::new_v4()), "severity": "mild" });
    let (s, b) = call(app, "POST", &format!("/v1/patients/{patient}/allergies"), who, Some(allergy)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{} writes: {b}", who.name);
    // A service that fails before its first statement (here: an invalid severity) is still
    // answered as a refused session, not with its own error.
    let invalid = json!({ "substance": "dust", "severity": "extreme" });
    let (s, b) = call(app, "POST", &format!("/v1/patients/{patient}/allergies"), who, Some(invalid)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{} sends an invalid allergy: {b}", who.name);
    assert_eq!(chart_reads(app, who).await, reads, "no success event for {}", who.name);
    assert_eq!(clinical_events(app, who).await, clinical, "no clinical event at all for {}", who.name);
    assert_eq!(allergies(app, patient).await, rows, "nothing written for {}", who.name);
    let denials = app
        .audit()
        .await
        .iter()
        .filter(|(a, o, r)| a == "security" && o == "denied" && r.as_deref().is_some_and(|r| r.contains(reason)))
        .count();
    assert!(denials >= 3, "the three refusals of {} recorded as '{reason}' (found {denials})", who.name);
}

#[tokio::test]
async fn clinical_routes_refuse_dead_mismatched_and_restricted_sessions() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    for who in [&w.ca1, &w.pa1] {
        let (s, b) = call(&app, "GET", &format!("/v1/patients/{}", w.p1), who, None).await;
        assert_eq!(s, StatusCode::OK, "{}: {b}", who.name);
    }
    assert_eq!(chart_reads(&app, &w.ca1).await, 1);

    // Not live: revoked, idle, past its lifetime, account disabled.
    set(&app, "UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE user_id = $1", &w.ca1).await;
    refused(&app, &w.ca1, w.p1, StatusCode::UNAUTHORIZED, "unauthorized", "session not live").await;
    set(&app, "UPDATE sessions SET last_seen_at = now() - interval '2 hours' WHERE user_id = $1", &w.pa1).await;
    refused(&app, &w.pa1, w.p1, StatusCode::UNAUTHORIZED, "unauthorized", "session not live").await;
    set(&app, "UPDATE sessions SET created_at = now() - interval '5 hours', expires_at = now() - interval '1 second' WHERE user_id = $1", &w.pa2).await;
    refused(&app, &w.pa2, w.p2, StatusCode::UNAUTHORIZED, "unauthorized", "session not live").await;
    set(&app, "UPDATE users SET status = 'disabled' WHERE id = $1", &w.cb).await;
    refused(&app, &w.cb, w.p3, StatusCode::UNAUTHORIZED, "unauthorized", "session not live").await;

    // A token minted before a role change.
    set(&app, "UPDATE users SET role = 'auditor' WHERE id = $1", &w.ca2).await;
    refused(&app, &w.ca2, w.p2, StatusCode::UNAUTHORIZED, "unauthorized", "does not match").await;

    // Restricted sessions: a one-time password to change; staff without a second factor.
    set(&app, "UPDATE users SET must_change_password = true WHERE id = $1", &w.pb).await;
    refused(&app, &w.pb, w.p3, StatusCode::FORBIDDEN, "password_change_required", "password_change_required").await;
    let ca3 = world::actor(&app, &world::crypto(&app).await, w.org_a, "clinician", "clinician without MFA").await;
    world::assign(&app, &w.aa, w.p1, &ca3).await;
    set(&app, "UPDATE sessions SET mfa_verified = false WHERE user_id = $1", &ca3).await;
    refused(&app, &ca3, w.p1, StatusCode::FORBIDDEN, "mfa_enrollment_required", "mfa_enrollment_required").await;

    // A bad token never reaches the database, as on every route.
    let forged = Actor { token: format!("{}x", w.ab.token), ..w.ab.clone() };
    refused(&app, &forged, w.p3, StatusCode::UNAUTHORIZED, "unauthorized", "access token rejected").await;
}

/// The check bumps `last_seen_at` inside the request's transaction: a clinical request keeps
/// the session alive like any other, and a connection never goes back to the pool inside
/// that transaction.
#[tokio::test]
async fn clinical_requests_count_as_activity() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    set(&app, "UPDATE sessions SET last_seen_at = now() - interval '60 seconds' WHERE user_id = $1", &w.ca1).await;
    let seen = || async {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>("SELECT last_seen_at FROM sessions WHERE user_id = $1")
            .bind(w.ca1.id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = seen().await;
    let (s, _) = call(&app, "GET", &format!("/v1/patients/{}/allergies", w.p1), &w.ca1, None).await;
    assert_eq!(s, StatusCode::OK);
    let after = seen().await;
    assert!((after - before).num_seconds() >= 59, "bumped from {before} to {after}");
    assert!((app.clock.now() - after).num_seconds().abs() <= 1, "to the request's time: {after}");
    // Many requests over few connections: each comes back outside its transaction.
    for _ in 0..30 {
        let (s, _) = call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await;
        assert_eq!(s, StatusCode::OK);
    }
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(open, 0, "no pooled connection left inside a transaction");
}

/// The activity write takes the session row only if it is free: a request does not wait for
/// another request of the same session that holds the row in its own, longer transaction.
#[tokio::test]
async fn a_request_does_not_wait_for_another_holding_the_session_row() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    set(&app, "UPDATE sessions SET last_seen_at = now() - interval '60 seconds' WHERE user_id = $1", &w.ca1).await;
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM sessions WHERE user_id = $1 FOR UPDATE")
        .bind(w.ca1.id)
        .execute(&mut *holder)
        .await
        .unwrap();
    let wait = std::time::Duration::from_secs(5);
    for path in [format!("/v1/patients/{}", w.p1), "/v1/me".to_owned()] {
        let answered = tokio::time::timeout(wait, call(&app, "GET", &path, &w.ca1, None)).await;
        let (s, b) = answered.unwrap_or_else(|_| panic!("GET {path} waited for the session row"));
        assert!(s.is_success(), "GET {path}: {s} {b}");
    }
    holder.rollback().await.unwrap();
}

/// An upload by a refused session is answered before its body is read: 401, not the 413 a
/// live session gets for the same oversized body.
#[tokio::test]
async fn uploads_check_the_session_before_reading_the_body() {
    let app = crate::common::spawn_app_with(&[("CUSTOS_ATTACHMENT_MAX_BYTES", "1000")]).await;
    let w = world::build(&app).await;
    let upload = |who: &Actor| {
        app.client
            .post(app.url(&format!("/v1/patients/{}/attachments?filename=big.txt", w.p1)))
            .bearer_auth(&who.token)
            .header("content-type", "text/plain")
            .body(vec![b'x'; 5000])
            .send()
    };
    assert_eq!(upload(&w.pa1).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    set(&app, "UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE user_id = $1", &w.pa1).await;
    assert_eq!(upload(&w.pa1).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}
