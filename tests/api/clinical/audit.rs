//! Audit completeness: a scripted session of N successful PHI requests and M refused ones
//! leaves exactly N success events and M denied events for those callers — one per request,
//! with the patient id on every patient-scoped success.

use reqwest::StatusCode;
use serde_json::json;

use super::world::{self, call, events};
use crate::common::spawn_app;

#[tokio::test]
async fn one_event_per_request_success_and_denied() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    let (p1, p2, p3) = (w.p1, w.p2, w.p3);
    let (c, pt) = (&w.ca1, &w.pa1);
    let (c0, p0) = (events(&app, c.id).await.len(), events(&app, pt.id).await.len());

    let script = vec![
        (c, "GET", format!("/v1/patients/{p1}"), None),
        (
            c,
            "POST",
            format!("/v1/patients/{p1}/allergies"),
            Some(json!({ "substance": "peanut", "severity": "severe" })),
        ),
        (c, "GET", format!("/v1/patients/{p1}/allergies"), None),
        (
            c,
            "POST",
            format!("/v1/patients/{p1}/history"),
            Some(json!({ "icd10_code": "J45.909", "diagnosed_on": "2020-01-01" })),
        ),
        (
            c,
            "POST",
            format!("/v1/patients/{p1}/prescriptions"),
            Some(json!({ "medication": "salbutamol", "dose": "2 puffs", "quantity": 1, "refills_allowed": 2 })),
        ),
        (c, "GET", format!("/v1/patients/{p2}/medications"), None),
        (pt, "GET", format!("/v1/patients/{p1}"), None),
        (
            pt,
            "POST",
            format!("/v1/patients/{p1}/conversations"),
            Some(json!({ "subject": "wheeze", "message": "at night", "symptoms": [] })),
        ),
        (pt, "GET", format!("/v1/patients/{p1}/prescriptions"), None),
        (pt, "GET", "/v1/conversations?status=pending".to_string(), None),
    ];
    let denied = vec![
        (c, "GET", format!("/v1/patients/{p3}"), None),
        (pt, "GET", format!("/v1/patients/{p2}"), None),
        (pt, "POST", format!("/v1/patients/{p1}/allergies"), Some(json!({ "substance": "dust", "severity": "mild" }))),
        (c, "POST", format!("/v1/patients/{p1}/allergies"), Some(json!({ "substance": "PEANUT", "severity": "mild" }))),
    ];
    for (who, m, path, body) in &script {
        let (s, b) = call(&app, m, path, who, body.clone()).await;
        assert!(s.is_success(), "{m} {path}: {s} {b}");
    }
    for (who, m, path, body) in &denied {
        let (s, _) = call(&app, m, path, who, body.clone()).await;
        assert!(s == StatusCode::NOT_FOUND || s == StatusCode::CONFLICT, "{m} {path}: {s}");
    }
    // Malformed input is refused before any data is touched, and the refusal is recorded
    // once, by the HTTP layer's wrapper (no patient: the path names none).
    let (s, _) = call(&app, "GET", "/v1/patients/not-a-uuid", c, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let malformed = 1;

    let ce = &events(&app, c.id).await[c0..];
    let pe = &events(&app, pt.id).await[p0..];
    let count = |ev: &[world::Event], outcome: &str| ev.iter().filter(|e| e.2 == outcome).count();
    assert_eq!(count(ce, "success") + count(pe, "success"), script.len(), "{ce:?}\n{pe:?}");
    assert_eq!(count(ce, "denied") + count(pe, "denied"), denied.len() + malformed, "{ce:?}\n{pe:?}");
    assert_eq!(ce.len() + pe.len(), script.len() + denied.len() + malformed, "nothing else recorded");
    assert!(
        ce.iter().any(|e| e.4.as_deref() == Some("not_found (GET /v1/patients/{id} → 404)")),
        "the malformed request's refusal names the route pattern, not the path: {ce:?}"
    );

    // Every patient-scoped success names its patient.
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_inbox WHERE actor_id = ANY($1) AND outcome = 'success' AND patient_id IS NULL \
         AND resource_type <> 'conversation'",
    )
    .bind(vec![c.id, pt.id])
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(missing, 0);
}
