//! Idempotency-Key on clinical writes: a write whose answer was lost (the client hung up right
//! after sending it) is retried with its key and answered as the first time, written once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

use super::world::{self, Actor};
use crate::common::TestApp;

async fn allergies(app: &TestApp, patient: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM allergies WHERE patient_id = $1")
        .bind(patient)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn post(app: &TestApp, path: &str, who: &Actor, key: &str, body: &str) -> (StatusCode, Value, bool) {
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(&who.token)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let (status, replayed) = (r.status(), r.headers().contains_key("idempotent-replayed"));
    (status, r.json().await.unwrap_or(Value::Null), replayed)
}

/// Sends the request over a raw connection and hangs up without reading the answer.
async fn send_and_hang_up(app: &TestApp, path: &str, who: &Actor, key: &str, body: &str) {
    let addr = app.address.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Idempotency-Key: {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        who.token,
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.flush().await.unwrap();
    drop(s);
}

#[tokio::test]
async fn a_write_retried_with_its_key_after_a_lost_answer_writes_once() {
    let app = crate::common::spawn_app().await;
    let w = world::build(&app).await;
    let path = format!("/v1/patients/{}/allergies", w.p1);
    let body = json!({ "substance": "latex", "severity": "mild" }).to_string();
    let before = allergies(&app, w.p1).await;

    send_and_hang_up(&app, &path, &w.ca1, "\"k-1\"", &body).await;
    // The write committed although its answer went nowhere.
    let mut written = false;
    for _ in 0..100 {
        if allergies(&app, w.p1).await == before + 1 {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(written, "the first attempt was written");

    // The retry gets the first answer, marked as replayed, and writes nothing.
    let (s, first, replayed) = post(&app, &path, &w.ca1, "\"k-1\"", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert!(replayed);
    assert_eq!(first["substance"], "latex");
    let (s, again, _) = post(&app, &path, &w.ca1, "\"k-1\"", &body).await;
    assert_eq!((s, &again["id"]), (StatusCode::CREATED, &first["id"]), "the same answer each time");
    assert_eq!(allergies(&app, w.p1).await, before + 1, "written once");
    // Each replay is an access on record (it returns clinical content), naming the patient.
    let replays: Vec<Option<Uuid>> = sqlx::query_scalar(
        "SELECT patient_id FROM audit_inbox WHERE actor_id = $1 AND resource_type = 'idempotent_replay'",
    )
    .bind(w.ca1.id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(replays, vec![Some(w.p1), Some(w.p1)]);

    // The same key with another request: 422, nothing written.
    let other = json!({ "substance": "peanut", "severity": "severe" }).to_string();
    let (s, e, _) = post(&app, &path, &w.ca1, "\"k-1\"", &other).await;
    assert_eq!((s, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("Idempotency-Key")), "{e}");
    assert_eq!(allergies(&app, w.p1).await, before + 1);

    // Keys are the user's own: another clinician's "k-1" is another key.
    world::assign(&app, &w.aa, w.p1, &w.ca2).await;
    let (s, theirs, replayed) = post(&app, &path, &w.ca2, "\"k-1\"", &other).await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    assert!(!replayed);
    assert_eq!(allergies(&app, w.p1).await, before + 2);

    // After 24 hours the key may be used again.
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let third = json!({ "substance": "pollen", "severity": "mild" }).to_string();
    let (s, _, replayed) = post(&app, &path, &w.ca1, "\"k-1\"", &third).await;
    assert_eq!((s, replayed), (StatusCode::CREATED, false));
    assert_eq!(allergies(&app, w.p1).await, before + 3);

    // A malformed key is refused before anything runs.
    let (s, _, _) = post(&app, &path, &w.ca1, "\"\"", &body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(allergies(&app, w.p1).await, before + 3);
}
