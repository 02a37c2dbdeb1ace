//! `GET /v1/audit/export?format=ndjson|csv|fhir`: the org's ledger streamed in index order
//! (several pages of the keyset cursor), a FHIR R4 Bundle of AuditEvents, the export itself
//! recorded; auditors and admins of the org only.

use custos::audit::{AuditContext, AuditEvent, Outcome};
use custos::db::Claims;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::world::call;
use super::{assert_client_error, checkpoint, drain, get, get_raw, setup};
use crate::common::TestApp;

/// More events than one export page (500), written through the app's write path.
async fn bulk(app: &TestApp, org: uuid::Uuid, n: usize) {
    let claims = Claims::system(Some(org));
    let mut tx = custos::db::begin(&app.pool, &claims).await.unwrap();
    let ctx = AuditContext { user_agent: Some("bulk, \"quoted\"\nagent".into()), ..AuditContext::from_claims(&claims) };
    for i in 0..n {
        let ev = AuditEvent::new(custos::audit::Action::Read, "patient", Outcome::Success).resource(format!("r{i}"));
        custos::audit::record(&mut tx, &ctx, &ev).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn exports_by(app: &TestApp, actor: uuid::Uuid) -> Vec<Vec<String>> {
    sqlx::query_scalar(
        "SELECT resource_ids FROM audit_inbox WHERE actor_id = $1 AND action = 'export' AND resource_type = 'audit_log' \
         UNION ALL SELECT resource_ids FROM audit_log WHERE actor_id = $1 AND action = 'export'",
    )
    .bind(actor)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn exports_stream_the_whole_ledger_in_every_format_and_are_audited() {
    let (app, w) = setup().await;
    let bg = format!("/v1/patients/{}/break-glass", w.p1);
    let reason = json!({ "reason": "patient unconscious in the emergency department" });
    assert_eq!(call(&app, "POST", &bg, &w.ca2, Some(reason)).await.0, StatusCode::CREATED);
    assert_eq!(call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca2, None).await.0, StatusCode::OK);
    bulk(&app, w.org_a, 1100).await;
    drain(&app).await;
    let size = checkpoint(&app, w.org_a, &w.ua).await.size as usize;
    assert!(size > 1100);

    // NDJSON: one event per line, index order, streamed (chunked, no length up front).
    let resp = app.client.get(app.url("/v1/audit/export?format=ndjson")).bearer_auth(&w.ua.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    assert_eq!(resp.headers()["transfer-encoding"], "chunked", "streamed");
    assert!(resp.headers()["content-disposition"].to_str().unwrap().contains(&w.org_a.to_string()));
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), size);
    assert!(lines.iter().enumerate().all(|(i, e)| e["seq"] == i as u64 && e["ledger_id"] == w.org_a.to_string()));
    assert!(lines.iter().any(|e| e["break_glass"] == true));
    assert_eq!(exports_by(&app, w.ua.id).await, vec![vec![w.org_a.to_string(), "ndjson".to_owned()]]);
    // Recorded once it completed, with what it sent.
    let (reason, named): (String, Vec<uuid::Uuid>) =
        sqlx::query_as("SELECT reason, patient_ids FROM audit_inbox WHERE actor_id = $1 AND action = 'export'")
            .bind(w.ua.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(reason, format!("export completed: {size} rows, last index {}", size - 1));
    assert!(named.contains(&w.p1), "the break-glass read named P1, so the export does: {named:?}");

    // CSV: the header, then one row per event (the quoted user agent spans lines inside quotes).
    let (s, ct, csv) = get_raw(&app, "/v1/audit/export?format=csv", &w.aa).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert_eq!(csv.lines().next().unwrap(), custos::audit::formats::CSV_HEADER.trim_end());
    let rows: Vec<&str> = csv.lines().skip(1).filter(|l| l.starts_with(&w.org_a.to_string())).collect();
    assert_eq!(rows.len(), size);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.split(',').nth(1), Some(i.to_string().as_str()), "seq column");
    }
    assert!(csv.contains("\"bulk, \"\"quoted\"\"\nagent\""), "RFC 4180 quoting");

    // FHIR: a Bundle (collection) of AuditEvents.
    let (s, ct, fhir) = get_raw(&app, "/v1/audit/export?format=fhir", &w.ua).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "application/fhir+json");
    let bundle: Value = serde_json::from_str(&fhir).expect("one JSON document");
    assert_eq!((bundle["resourceType"].as_str(), bundle["type"].as_str()), (Some("Bundle"), Some("collection")));
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), size);
    for (i, e) in entries.iter().enumerate() {
        let r = &e["resource"];
        assert_eq!(r["resourceType"], "AuditEvent");
        assert_eq!(e["fullUrl"], format!("urn:uuid:{}", r["id"].as_str().unwrap()));
        assert!(r["recorded"].as_str().unwrap().ends_with('Z'));
        assert!(["C", "R", "U", "D", "E"].contains(&r["action"].as_str().unwrap()));
        assert!(["0", "4", "8", "12"].contains(&r["outcome"].as_str().unwrap()));
        assert!(r["type"]["system"].is_string() && r["type"]["code"].is_string());
        assert_eq!(r["agent"][0]["requestor"], true);
        assert!(
            r["source"]["observer"]["display"].as_str().unwrap().starts_with("Custos")
                && r["source"]["observer"]["identifier"]["value"].is_string()
        );
        assert_eq!(r["extension"][0]["valueString"], format!("{}/{i}", w.org_a));
    }
    let btg: Vec<&Value> = entries
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "BTG")
        .collect();
    assert!(!btg.is_empty(), "break-glass access carries purposeOfUse BTG");
    // The export names the grant and a commitment to its sealed reason, never the text (issue 19).
    assert!(btg.iter().all(|r| {
        let d = r["outcomeDesc"].as_str().unwrap();
        d.contains("hmac-sha256:") && !d.contains("unconscious")
    }));
    let read = entries.iter().map(|e| &e["resource"]).find(|r| r["subtype"][0]["code"] == "read").unwrap();
    assert_eq!((read["type"]["code"].as_str(), read["action"].as_str()), (Some("rest"), Some("R")));
    let patient_ref = format!("Patient/{}", w.p1);
    let names_patient = |e: &Value| {
        e["resource"]["entity"].as_array().unwrap().iter().any(|x| x["what"]["reference"] == patient_ref.as_str())
    };
    assert!(entries.iter().any(names_patient));

    // The exports are in the ledger once sequenced, and show up in the next export.
    drain(&app).await;
    let (_, _, again) = get_raw(&app, "/v1/audit/export?format=ndjson", &w.ua).await;
    let exported: Vec<Value> =
        again.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|e| e["action"] == "export").collect();
    assert_eq!(exported.len(), 3, "ndjson, csv and fhir exports");
    assert!(exported.iter().any(|e| e["actor_id"] == w.aa.id.to_string() && e["resource_ids"][1] == "csv"));

    // A time range narrows the export.
    let mid = lines[size / 2]["occurred_at"].as_str().unwrap().to_owned();
    let (s, _, part) = get_raw(&app, &format!("/v1/audit/export?format=ndjson&to={mid}"), &w.ua).await;
    assert_eq!(s, StatusCode::OK);
    let part: Vec<Value> = part.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(part.len() < size + 3 && part.iter().all(|e| e["occurred_at"].as_str().unwrap() < mid.as_str()));
}

#[tokio::test]
async fn exports_are_for_the_orgs_auditors_and_admins_and_bad_input_is_4xx() {
    let (app, w) = setup().await;
    drain(&app).await;
    for who in [&w.ca1, &w.pa1] {
        let (s, body) = get(&app, "/v1/audit/export?format=ndjson", who).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{}: {body}", who.name);
    }
    let (s, _) = get(&app, &format!("/v1/audit/export?ledger={}", w.org_a), &w.ab).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another org's admin");
    // Another org's empty export is still a valid Bundle.
    let (s, _, fhir) =
        get_raw(&app, "/v1/audit/export?format=fhir&from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z", &w.ab).await;
    assert_eq!(s, StatusCode::OK);
    let bundle: Value = serde_json::from_str(&fhir).unwrap();
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 0);
    assert!(exports_by(&app, w.ca1.id).await.is_empty(), "refused exports export nothing");
    for q in
        ["format=xml", "format=", "from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z", "from=tomorrow", "ledger=42"]
    {
        let (s, body) = get(&app, &format!("/v1/audit/export?{q}"), &w.ua).await;
        assert_client_error(s, &body, q);
    }
    // A range the ledger cannot hold (PostgreSQL would refuse it only once rows are read, after
    // a 200): 422 naming the field, before the first byte — the same for the event listing.
    for (q, field) in [("from=-4714-11-23T00:00:00Z", "from"), ("to=%2B10000-01-01T00:00:00Z", "to")] {
        for route in ["/v1/audit/export", "/v1/audit/events"] {
            let (s, body) = get(&app, &format!("{route}?{q}"), &w.ua).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{route}?{q}: {body}");
            assert_eq!(body["error"]["field"], field, "{route}?{q}: {body}");
        }
    }
    assert!(exports_by(&app, w.ua.id).await.is_empty(), "a refused export is not an export");
}
