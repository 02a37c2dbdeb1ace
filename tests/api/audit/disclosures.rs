//! The accounting of disclosures is complete: every way a patient's data can leave the server
//! — a chart or section read, a list that includes them, a PDF, a break-glass read, an export
//! of ledger entries naming them, their own sign-ins — shows in that patient's access report,
//! and nothing about another patient does.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::world::Actor;
use super::{drain, get, setup};
use crate::common::TestApp;

/// Sends a request and returns (status, body, the server's request id).
async fn send(app: &TestApp, method: &str, path: &str, who: &Actor, body: Option<Value>) -> (StatusCode, Value, Uuid) {
    let mut req = app.client.request(method.parse().unwrap(), app.url(path)).bearer_auth(&who.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let (status, id) = (resp.status(), resp.headers()["x-request-id"].to_str().unwrap().parse().unwrap());
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), id)
}

/// Ledger indices of the events of a request.
async fn seqs_of(app: &TestApp, request: Uuid) -> Vec<u64> {
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_log WHERE request_id = $1 ORDER BY seq")
        .bind(request)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    seqs.into_iter().map(|s| s as u64).collect()
}

async fn report(app: &TestApp, patient: Uuid, who: &Actor) -> Vec<u64> {
    let (s, r) = get(app, &format!("/v1/patients/{patient}/access-report?limit=1000"), who).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["items"].as_array().unwrap().iter().map(|i| i["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn every_way_a_patients_data_leaves_shows_in_their_access_report() {
    let (app, w) = setup().await;
    let p1 = w.p1;
    let (s, conv, _) = send(
        &app,
        "POST",
        &format!("/v1/patients/{p1}/conversations"),
        &w.pa1,
        Some(json!({ "subject": "wheeze", "message": "at night", "symptoms": [] })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{conv}");
    let (s, rx, _) = send(
        &app,
        "POST",
        &format!("/v1/patients/{p1}/prescriptions"),
        &w.ca1,
        Some(json!({ "medication": "amoxicillin", "dose": "500 mg", "quantity": 30, "refills_allowed": 1 })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{rx}");
    let rx = rx["id"].as_str().unwrap().to_owned();
    let (s, _, _) = send(
        &app,
        "POST",
        &format!("/v1/patients/{p1}/break-glass"),
        &w.ca2,
        Some(json!({ "reason": "unconscious in the emergency department" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    let mut disclosures = Vec::new();
    for (who, path) in [
        (&w.ca1, format!("/v1/patients/{p1}")),
        (&w.ca1, format!("/v1/patients/{p1}/allergies")),
        (&w.ca1, "/v1/patients".to_owned()),
        (&w.ca1, "/v1/conversations".to_owned()),
        (&w.pa1, "/v1/conversations".to_owned()),
        (&w.ca1, format!("/v1/prescriptions/{rx}.pdf")),
        (&w.ca2, format!("/v1/patients/{p1}")),
    ] {
        let (s, body, id) = send(&app, "GET", &path, who, None).await;
        assert_eq!(s, StatusCode::OK, "{} GET {path}: {body}", who.name);
        disclosures.push((format!("{} GET {path}", who.name), id));
    }
    // Another patient's chart: not in P1's report.
    let (s, _, other) = send(&app, "GET", &format!("/v1/patients/{}", w.p2), &w.ca1, None).await;
    assert_eq!(s, StatusCode::OK);
    // An export of ledger entries that name P1 (the reads above, once sequenced).
    drain(&app).await;
    let (s, _, export) = send(&app, "GET", "/v1/audit/export?format=ndjson", &w.ua, None).await;
    assert_eq!(s, StatusCode::OK);
    disclosures.push(("ua exports the ledger".to_owned(), export));
    drain(&app).await;

    let lines = report(&app, p1, &w.pa1).await;
    for (what, id) in &disclosures {
        let seqs = seqs_of(&app, *id).await;
        assert_eq!(seqs.len(), 1, "{what}: exactly one event");
        assert!(lines.contains(&seqs[0]), "{what} (index {}) is in P1's access report {lines:?}", seqs[0]);
    }
    let seqs = seqs_of(&app, other).await;
    assert!(!lines.contains(&seqs[0]), "P2's chart read is not in P1's report");
    // …but the list read is in P2's report too.
    let p2_lines = report(&app, w.p2, &w.pa2).await;
    assert!(p2_lines.contains(&seqs_of(&app, disclosures[2].1).await[0]), "the patient list named P2 as well");
    // The export names exactly the patients its entries name.
    let named: Vec<Uuid> = sqlx::query_scalar("SELECT unnest(patient_ids) FROM audit_log WHERE request_id = $1")
        .bind(export)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(named.contains(&p1) && named.contains(&w.p2) && !named.contains(&w.p3), "{named:?}");
}

#[tokio::test]
async fn a_patients_own_sign_ins_are_in_their_access_report() {
    let app = crate::common::spawn_app_with(&[("CUSTOS_LEDGER_ORIGIN", super::ORIGIN)]).await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = crate::invites::patient(&app, &org).await;
    let code = crate::invites::invite_code(&app, &admin, p).await;
    let password = "a long patient passphrase 42";
    let reg = json!({ "invite_code": code, "birth_date": crate::invites::BIRTH_DATE,
        "email": "jdoe@mail.example", "password": password });
    assert_eq!(app.register(reg).await.0, StatusCode::CREATED);
    assert_eq!(app.login("jdoe@mail.example", "wrong password entirely").await.0, StatusCode::UNAUTHORIZED);
    let (s, t) = app.login("jdoe@mail.example", password).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    drain(&app).await;
    let token = t["access_token"].as_str().unwrap();
    let (s, r) = app.get(&format!("/v1/patients/{p}/access-report?limit=1000"), token).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let actions: Vec<&str> = r["items"].as_array().unwrap().iter().filter_map(|i| i["action"].as_str()).collect();
    assert!(actions.contains(&"login"), "the sign-in: {r}");
    assert!(actions.contains(&"login_failed"), "the failed sign-in: {r}");
    // The admin, who reads the same report, sees the same lines.
    let (s, by_admin) = app.get(&format!("/v1/patients/{p}/access-report?limit=1000"), &admin.access).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(by_admin["items"], r["items"]);
}
