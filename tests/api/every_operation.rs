//! Every operation of `/openapi.json`, called by every role (and with no token), leaves
//! exactly one audit event — whatever it answers — or is one of the documented exceptions:
//! - the public operations (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`,
//!   `/v1/audit/keys`, `/v1/ledgers/{ledger}/keys`): they touch no patient data, identity or
//!   ledger entry;
//! - a request that presented no token and was refused (4xx): it claims no identity, so there
//!   is no one to record it for (the rate limit and the access log cover it; its failures,
//!   5xx, are recorded in the system ledger).
//!
//! The requests are made with an empty JSON object as the body, so each operation is met by
//! the outcomes that its roles produce with it: successes for the roles it serves, refusals
//! (401/403/404/409/422/400) for the others and for the missing fields.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clinical::world::{self, Actor, World};
use crate::common::{TestApp, spawn_app_with};

/// Operations that touch no patient data, identity or ledger entry.
const PUBLIC: &[&str] =
    &["/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/audit/keys", "/v1/ledgers/{ledger}/keys"];

/// The ids to put into a path, by what the path is about.
struct Ids {
    patient: Uuid,
    prescription: String,
    conversation: String,
    attachment: String,
    medication: String,
    clinician: Uuid,
}

fn fill(path: &str, ids: &Ids, w: &World) -> String {
    let id = if path.starts_with("/v1/patients/") {
        ids.patient.to_string()
    } else if path.starts_with("/v1/prescriptions/") {
        ids.prescription.clone()
    } else if path.starts_with("/v1/conversations/") {
        ids.conversation.clone()
    } else if path.starts_with("/v1/attachments/") {
        ids.attachment.clone()
    } else {
        // Sessions and users: one that is not the caller's.
        Uuid::new_v4().to_string()
    };
    let mut out = path.replace("{id}", &id).replace("{mid}", &ids.medication);
    out = out.replace("{ledger}", &w.org_a.to_string()).replace("{index}", "0");
    out = out.replace("{clinician_id}", &ids.clinician.to_string()).replace("{action}", "unlock");
    out = out.replace("{ledger}", &w.org_a.to_string()).replace("{tail}", "0/000");
    let query = match path {
        "/v1/audit/checkpoint" => format!("?ledger={}", w.org_a),
        "/v1/audit/proofs/inclusion" => format!("?ledger={}&index=0&tree_size=1", w.org_a),
        "/v1/audit/proofs/consistency" => format!("?ledger={}&from=1&to=1", w.org_a),
        _ => String::new(),
    };
    out + &query
}

/// The bodies a write is sent with: an empty object (missing fields), and for some writes a
/// valid one and one a domain rule refuses, so that successes and 422s are met as well.
fn bodies(method: &str, path: &str) -> Vec<Value> {
    let unique = Uuid::new_v4().simple().to_string();
    let mut out = vec![json!({})];
    match (method, path) {
        ("POST", "/v1/patients/{id}/allergies") => {
            out.push(json!({ "substance": format!("dust {unique}"), "severity": "mild" }));
            out.push(json!({ "substance": format!("dust {unique}"), "severity": "extreme" }));
        }
        ("POST", "/v1/patients/{id}/prescriptions") => {
            out.push(json!({ "medication": "x", "dose": "1 mg", "quantity": 1, "refills_allowed": 0 }));
            out.push(json!({ "medication": "x", "dose": "1 mg", "quantity": 0, "refills_allowed": 0 }));
        }
        ("POST", "/v1/patients/{id}/conversations") => {
            out.push(json!({ "subject": "cough", "message": "since monday", "symptoms": [] }));
        }
        // Harmless values (the defaults), so the walk's sessions stay full.
        ("PUT", "/v1/admin/auth-policy") => {
            out.push(json!({ "require_phishing_resistant": false, "allow_passwordless": false }));
        }
        ("POST", "/v1/me/passkeys/register/start") => {
            out.push(json!({ "password": "not the password", "label": "laptop" }));
        }
        ("POST", "/v1/break-glass/allowances") => {
            out.push(json!({ "clinician_id": Uuid::new_v4(), "extra": 1 }));
            out.push(json!({ "clinician_id": Uuid::new_v4(), "extra": 0 }));
        }
        ("POST", "/v1/patients/{id}/break-glass") => {
            out.push(json!({ "reason": "patient unconscious in the emergency department" }));
        }
        _ => {}
    }
    out
}

/// (status, events recorded under the server's id of the request).
async fn call(app: &TestApp, method: &str, path: &str, who: Option<&Actor>, body: &Value) -> (StatusCode, i64) {
    let mut req = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(a) = who {
        req = req.bearer_auth(&a.token);
    }
    if method != "GET" {
        req = req.json(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let id: Uuid = resp.headers()["x-request-id"].to_str().unwrap().parse().unwrap();
    let _ = resp.bytes().await; // a streamed export records itself once it ends
    let mut n = 0;
    for _ in 0..20 {
        n = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM audit_inbox WHERE request_id = $1) \
                  + (SELECT count(*) FROM audit_log WHERE request_id = $1)",
        )
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if n > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    (status, n)
}

#[tokio::test]
async fn every_operation_leaves_exactly_one_event_per_request_whatever_it_answers() {
    let app = spawn_app_with(&[("CUSTOS_AUTH_RATE_PER_MINUTE", "100000")]).await;
    let w = world::build(&app).await;
    let p = w.p1;
    let body = |v: Value| Some(v);
    let (_, conv) = world::call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/conversations"),
        &w.pa1,
        body(json!({ "subject": "wheeze", "message": "at night", "symptoms": [] })),
    )
    .await;
    let (_, rx) = world::call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/prescriptions"),
        &w.ca1,
        body(json!({ "medication": "amoxicillin", "dose": "500 mg", "quantity": 30, "refills_allowed": 5 })),
    )
    .await;
    let (_, med) = world::call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/medications"),
        &w.ca1,
        body(json!({ "name": "metformin", "dose": 500, "unit": "mg", "route": "oral", "frequency": "twice daily", "start_date": "2026-01-01" })),
    )
    .await;
    let att: Value = app
        .client
        .post(app.url(&format!("/v1/patients/{p}/attachments?filename=scan.pdf")))
        .bearer_auth(&w.pa1.token)
        .header("Content-Type", "application/pdf")
        .body(b"%PDF-1.4 test".to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids = Ids {
        patient: p,
        prescription: rx["id"].as_str().expect("rx").to_owned(),
        conversation: conv["id"].as_str().expect("conv").to_owned(),
        attachment: att["id"].as_str().expect("att").to_owned(),
        medication: med["id"].as_str().expect("med").to_owned(),
        clinician: w.ca2.id,
    };

    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut operations: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    // What ends the callers' sessions goes last.
    operations.sort_by_key(|(_, path)| path.contains("logout") || path.contains("/admin/users/"));
    assert!(operations.len() > 50, "{} operations", operations.len());

    let roles: [(&str, Option<&Actor>); 6] = [
        ("patient", Some(&w.pa1)),
        ("clinician", Some(&w.ca1)),
        ("off-team clinician", Some(&w.ca2)),
        ("admin", Some(&w.aa)),
        ("auditor", Some(&w.ua)),
        ("no token", None),
    ];
    let mut seen: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (method, path) in &operations {
        for (role, who) in &roles {
            for body in bodies(method, path) {
                let url = fill(path, &ids, &w);
                let (status, events) = call(&app, method, &url, *who, &body).await;
                seen.entry(format!("{method} {path}")).or_default().push(status.as_u16());
                let public = PUBLIC.contains(&path.as_str());
                let expected = if public || (who.is_none() && status.is_client_error()) { 0 } else { 1 };
                if events != expected {
                    wrong.push(format!(
                        "{role}: {method} {url} {body} → {status}: {events} events (expected {expected})"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} request(s) not recorded exactly once:\n{}", wrong.len(), wrong.join("\n"));
    // Per role, in the order of `roles`: the patient's access report is read by the patient,
    // the organization's admin and its auditor; clinicians (on the care team or not) get 404.
    assert_eq!(seen["GET /v1/patients/{id}/access-report"], [200, 404, 404, 200, 200, 401], "access report by role");
    // The walk met successes and refusals alike.
    let all: Vec<u16> = seen.values().flatten().copied().collect();
    for class in [200, 201, 204, 401, 403, 404, 422] {
        assert!(all.contains(&class), "some request answered {class}: {seen:?}");
    }
}
