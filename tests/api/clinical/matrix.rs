//! The access matrix over HTTP: every clinical resource and verb, tried by every kind of
//! caller against patient P1 — the patient themself, another patient, the clinician on the
//! care team, one off it (before, during and after break-glass), the admin, the auditor and
//! another organization's clinician and admin. Refused means 404 (existence does not leak).

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::world::{self, Actor, World, call, events};
use crate::common::{TestApp, spawn_app};

/// Who may do an operation on P1.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// Reads of clinical content: P1 themself, clinicians with access.
    Read,
    /// Clinical writes: clinicians with access.
    Write,
    /// Demographics: also the admin.
    Demographics,
    /// Care-team management: the admin only.
    Admin,
    /// Case flow writes: P1 and clinicians with access.
    Case,
}

struct Ids {
    rx: String,
    conv: String,
    att: String,
}

fn ops(w: &World, ids: &Ids) -> Vec<(&'static str, String, Option<Value>, Who)> {
    let p = w.p1;
    let (rx, conv, att) = (&ids.rx, &ids.conv, &ids.att);
    vec![
        ("GET", format!("/v1/patients/{p}"), None, Who::Demographics),
        ("GET", format!("/v1/patients/{p}/medical-info"), None, Who::Read),
        ("PUT", format!("/v1/patients/{p}/medical-info"), Some(json!({ "blood_type": "A+" })), Who::Write),
        ("GET", format!("/v1/patients/{p}/allergies"), None, Who::Read),
        (
            "POST",
            format!("/v1/patients/{p}/allergies"),
            Some(json!({ "substance": format!("s-{}", Uuid::new_v4()), "severity": "mild" })),
            Who::Write,
        ),
        ("GET", format!("/v1/patients/{p}/medications"), None, Who::Read),
        (
            "POST",
            format!("/v1/patients/{p}/medications"),
            Some(
                json!({ "name": "m", "dose": 1, "unit": "mg", "route": "oral", "frequency": "daily", "start_date": "2024-01-01" }),
            ),
            Who::Write,
        ),
        ("GET", format!("/v1/patients/{p}/history"), None, Who::Read),
        (
            "POST",
            format!("/v1/patients/{p}/history"),
            Some(json!({ "icd10_code": "I10", "diagnosed_on": "2024-01-01" })),
            Who::Write,
        ),
        ("GET", format!("/v1/patients/{p}/prescriptions"), None, Who::Read),
        (
            "POST",
            format!("/v1/patients/{p}/prescriptions"),
            Some(json!({ "medication": "m", "dose": "1 mg", "quantity": 1, "refills_allowed": 11 })),
            Who::Write,
        ),
        ("GET", format!("/v1/prescriptions/{rx}"), None, Who::Read),
        ("GET", format!("/v1/prescriptions/{rx}.pdf"), None, Who::Read),
        ("POST", format!("/v1/prescriptions/{rx}/refill"), None, Who::Write),
        ("GET", format!("/v1/patients/{p}/conversations"), None, Who::Read),
        (
            "POST",
            format!("/v1/patients/{p}/conversations"),
            Some(json!({ "subject": "s", "message": "m", "symptoms": [] })),
            Who::Case,
        ),
        ("GET", format!("/v1/conversations/{conv}"), None, Who::Read),
        ("GET", format!("/v1/conversations/{conv}/messages"), None, Who::Read),
        ("POST", format!("/v1/conversations/{conv}/messages"), Some(json!({ "body": "hello" })), Who::Case),
        ("GET", format!("/v1/patients/{p}/attachments"), None, Who::Read),
        ("GET", format!("/v1/attachments/{att}"), None, Who::Read),
        ("GET", format!("/v1/patients/{p}/care-team"), None, Who::Admin),
    ]
}

fn allowed(who: Who, actor: &Actor, w: &World, glass: bool) -> bool {
    let clinician_with_access = actor.id == w.ca1.id || (glass && actor.id == w.ca2.id);
    match who {
        Who::Read | Who::Case => actor.id == w.pa1.id || clinician_with_access,
        Who::Write => clinician_with_access,
        Who::Demographics => actor.id == w.pa1.id || clinician_with_access || actor.id == w.aa.id,
        Who::Admin => actor.id == w.aa.id,
    }
}

async fn check_all(app: &TestApp, w: &World, ids: &Ids, glass: bool, phase: &str) {
    let actors = [&w.pa1, &w.pa2, &w.ca1, &w.ca2, &w.aa, &w.ua, &w.pb, &w.cb, &w.ab];
    let mut failures = Vec::new();
    for (method, path, body, who) in ops(w, ids) {
        for a in actors {
            let (s, resp) = call(app, method, &path, a, body.clone()).await;
            let expect = allowed(who, a, w, glass);
            let ok = if expect { s.is_success() || s == StatusCode::CONFLICT } else { s == StatusCode::NOT_FOUND };
            if !ok {
                failures.push(format!(
                    "[{phase}] {} {method} {path}: got {s} {resp}, expected {}",
                    a.name,
                    if expect { "access" } else { "404" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn upload(app: &TestApp, who: &Actor, path: &str) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(&who.token)
        .header("content-type", "text/plain")
        .body("lab result text")
        .send()
        .await
        .unwrap();
    let s = resp.status();
    (s, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_resource_and_verb_for_every_caller() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    let p = w.p1;
    let (_, rx) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/prescriptions"),
        &w.ca1,
        Some(json!({ "medication": "m", "dose": "5 mg", "quantity": 10, "refills_allowed": 11 })),
    )
    .await;
    let (_, conv) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/conversations"),
        &w.pa1,
        Some(
            json!({ "subject": "cough", "message": "since Monday", "symptoms": [{ "name": "cough", "severity": 4 }] }),
        ),
    )
    .await;
    let (s, att) = upload(&app, &w.pa1, &format!("/v1/patients/{p}/attachments?filename=lab.txt")).await;
    assert_eq!(s, StatusCode::CREATED, "{att}");
    let ids = Ids {
        rx: rx["id"].as_str().unwrap().into(),
        conv: conv["id"].as_str().unwrap().into(),
        att: att["id"].as_str().unwrap().into(),
    };
    check_all(&app, &w, &ids, false, "no break-glass").await;

    // Uploads: patient P1 and the care-team clinician may; nobody else.
    for a in [&w.pa2, &w.ca2, &w.aa, &w.ua, &w.cb] {
        let (s, _) = upload(&app, a, &format!("/v1/patients/{p}/attachments?filename=x.txt")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{} uploading", a.name);
    }
    // Care-team changes and break-glass: by role.
    for a in [&w.pa1, &w.ca1, &w.ua, &w.ab] {
        let (s, _) =
            call(&app, "POST", &format!("/v1/patients/{p}/care-team"), a, Some(json!({ "clinician_id": w.ca2.id })))
                .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{} changing the care team", a.name);
    }
    let reason = json!({ "reason": "patient unconscious in the emergency department" });
    for a in [&w.pa1, &w.aa, &w.ua, &w.cb] {
        let (s, _) = call(&app, "POST", &format!("/v1/patients/{p}/break-glass"), a, Some(reason.clone())).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{} breaking the glass", a.name);
    }
    let (s, e) =
        call(&app, "POST", &format!("/v1/patients/{p}/break-glass"), &w.ca2, Some(json!({ "reason": "urgent" }))).await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
        "reason < 20 chars"
    );

    // Break-glass: ca2 gets access for the configured time, every access flagged.
    let (s, grant) = call(&app, "POST", &format!("/v1/patients/{p}/break-glass"), &w.ca2, Some(reason.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{grant}");
    let before = events(&app, w.ca2.id).await.len();
    check_all(&app, &w, &ids, true, "with break-glass").await;
    let ev = events(&app, w.ca2.id).await;
    let during: Vec<_> = ev[before..].iter().filter(|e| e.2 == "success").collect();
    assert!(!during.is_empty());
    // Flagged, naming the grant and a commitment to its sealed reason, never the text (issue 19).
    let grant_ref = format!("break-glass grant {}", grant["id"].as_str().unwrap());
    assert!(
        during.iter().all(|e| e.3
            && e.4.as_deref().is_some_and(|r| r.starts_with(&grant_ref)
                && r.contains("hmac-sha256:")
                && !r.contains(reason["reason"].as_str().unwrap()))),
        "{during:?}"
    );
    assert!(ev.iter().any(|e| e.0 == "break_glass" && e.3), "the grant itself is flagged");
    // The care-team clinician's reads are not flagged.
    assert!(events(&app, w.ca1.id).await.iter().all(|e| !e.3));

    // After expiry: back to 404.
    crate::common::rewrite_history(
        &app.pool,
        "UPDATE break_glass_grants SET granted_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'",
        &[],
    )
    .await;
    check_all(&app, &w, &ids, false, "after expiry").await;
    let _ = (w.org_a, w.org_b, w.p2, w.p3);
}
