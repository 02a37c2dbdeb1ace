//! `GET /v1/patients/{id}/access-report`: the HIPAA accounting of disclosures. The patient
//! themself and their organization's admins and auditors read it; to anyone else it does not
//! exist. Every
//! line names who, when, what and (break-glass) why, and is provable in the ledger.

use custos::audit::merkle::verify_inclusion;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::world::call;
use super::{assert_client_error, checkpoint, drain, get, hash, hashes, setup};

const REASON: &str = "patient unconscious in the emergency department";

#[tokio::test]
async fn access_report_lists_every_access_with_reasons_and_provable_indices() {
    let (app, w) = setup().await;
    let chart = |p| format!("/v1/patients/{p}");
    assert_eq!(call(&app, "GET", &chart(w.p1), &w.ca1, None).await.0, StatusCode::OK);
    let bg = format!("/v1/patients/{}/break-glass", w.p1);
    assert_eq!(call(&app, "POST", &bg, &w.ca2, Some(json!({ "reason": REASON }))).await.0, StatusCode::CREATED);
    assert_eq!(call(&app, "GET", &chart(w.p1), &w.ca2, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", &chart(w.p2), &w.ca1, None).await.0, StatusCode::OK);
    drain(&app).await;

    let path = format!("/v1/patients/{}/access-report?limit=1000", w.p1);
    let (s, report) = get(&app, &path, &w.pa1).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["patient_id"], w.p1.to_string());
    let items = report["items"].as_array().unwrap().clone();
    let (s, by_admin) = get(&app, &path, &w.aa).await;
    assert_eq!(s, StatusCode::OK, "{by_admin}");
    assert_eq!(by_admin["items"].as_array().unwrap(), &items, "the admin sees the same accounting");

    let by = |actor: &super::world::Actor| items.iter().filter(|i| i["actor_id"] == actor.id.to_string()).count();
    assert!(by(&w.ca1) >= 1 && by(&w.ca2) >= 2, "{report}");
    let btg: Vec<&Value> = items.iter().filter(|i| i["break_glass"] == true).collect();
    assert!(btg.iter().any(|i| i["action"] == "read" && i["actor_id"] == w.ca2.id.to_string()), "{report}");
    for i in &items {
        assert_eq!(i["ledger_id"], w.org_a.to_string());
        assert!(i["occurred_at"].is_string() && i["actor_role"].is_string() && i["action"].is_string());
        if i["break_glass"] == true {
            assert_eq!(i["reason"], REASON, "break-glass lines say why");
            assert_eq!(i["actor_role"], "clinician");
        } else {
            assert!(i["reason"].is_null(), "no reason text on ordinary lines: {i}");
        }
    }

    // Every line is provable: an auditor's inclusion proof for its index against the signed root.
    let cp = checkpoint(&app, w.org_a, &w.ua).await;
    let mut seen = std::collections::HashSet::new();
    for i in &items {
        let seq = i["seq"].as_u64().unwrap();
        assert!(seen.insert(seq) && seq < cp.size);
        let q = format!("/v1/audit/proofs/inclusion?ledger={}&index={seq}&tree_size={}", w.org_a, cp.size);
        let (s, p) = get(&app, &q, &w.ua).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["leaf_hash"], i["leaf_hash"]);
        verify_inclusion(&hash(&i["leaf_hash"]), seq, cp.size, &hashes(&p["proof"]), &cp.root).expect("line proves");
    }

    // Another patient's accesses are not in it; pages of one add up to the whole.
    let (_, p2) = get(&app, &format!("/v1/patients/{}/access-report", w.p2), &w.pa2).await;
    let p2_seqs: Vec<u64> = p2["items"].as_array().unwrap().iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert!(!p2_seqs.is_empty() && p2_seqs.iter().all(|s| !seen.contains(s)));
    let mut paged = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let (s, page) = get(&app, &format!("/v1/patients/{}/access-report?limit=1{cursor}", w.p1), &w.pa1).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        paged.extend(page["items"].as_array().unwrap().iter().map(|i| i["seq"].as_u64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, items.iter().map(|i| i["seq"].as_u64().unwrap()).collect::<Vec<_>>());

    // Reading the report is itself an access on record.
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_inbox WHERE actor_id = $1 AND resource_type = 'access_report' AND patient_id = $2",
    )
    .bind(w.pa1.id)
    .bind(w.p1)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(recorded >= 2);
}

#[tokio::test]
async fn access_report_is_404_to_everyone_else_and_bad_input_is_4xx() {
    let (app, w) = setup().await;
    drain(&app).await;
    let path = format!("/v1/patients/{}/access-report", w.p1);
    for who in [&w.pa2, &w.ca1, &w.ca2, &w.pb, &w.cb, &w.ab] {
        let (s, body) = get(&app, &path, who).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{}: {body}", who.name);
        assert_eq!(body["error"]["code"], "not_found");
    }
    for who in [&w.aa, &w.ua] {
        let (s, _) = get(&app, &format!("/v1/patients/{}/access-report", w.p3), who).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{}: another org's patient", who.name);
        let (s, _) = get(&app, &format!("/v1/patients/{}/access-report", uuid::Uuid::new_v4()), who).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{}: no such patient", who.name);
    }
    assert_eq!(app.client.get(app.url(&path)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let (s, body) = get(&app, "/v1/patients/not-a-uuid/access-report", &w.aa).await;
    assert_client_error(s, &body, "path id");
    for q in ["cursor=abc", "cursor=-5", "limit=0", "limit=5000", "limit=many"] {
        let (s, body) = get(&app, &format!("{path}?{q}"), &w.pa1).await;
        assert_client_error(s, &body, q);
    }
}

/// The organization's auditor — HIPAA's reader of the accounting — gets the same lines as the
/// patient and the admin, break-glass reasons included, read from the ledger (auditors read no
/// patient row); each read is recorded. Another organization's auditor gets 404, recorded.
#[tokio::test]
async fn the_orgs_auditor_reads_the_access_report_and_another_orgs_auditor_gets_404() {
    let (app, w) = setup().await;
    assert_eq!(call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await.0, StatusCode::OK);
    let bg = format!("/v1/patients/{}/break-glass", w.p1);
    assert_eq!(call(&app, "POST", &bg, &w.ca2, Some(json!({ "reason": REASON }))).await.0, StatusCode::CREATED);
    drain(&app).await;

    let path = format!("/v1/patients/{}/access-report?limit=1000", w.p1);
    let (s, by_auditor) = get(&app, &path, &w.ua).await;
    assert_eq!(s, StatusCode::OK, "{by_auditor}");
    assert_eq!(by_auditor["patient_id"], w.p1.to_string());
    let (_, by_patient) = get(&app, &path, &w.pa1).await;
    let lines =
        |r: &Value| r["items"].as_array().unwrap().iter().map(|i| i["seq"].as_i64().unwrap()).collect::<Vec<_>>();
    let auditor_lines = lines(&by_auditor);
    assert!(!auditor_lines.is_empty(), "{by_auditor}");
    // The patient's report was read after the auditor's: it holds that read too (and nothing
    // before it that the auditor did not see).
    assert!(lines(&by_patient).starts_with(&auditor_lines), "{by_auditor}\n{by_patient}");
    let items = by_auditor["items"].as_array().unwrap();
    assert!(items.iter().any(|i| i["actor_id"] == w.ca1.id.to_string() && i["action"] == "read"), "{by_auditor}");
    assert!(
        items.iter().any(|i| i["break_glass"] == true && i["reason"] == REASON),
        "the auditor sees the break-glass reason: {by_auditor}"
    );

    // The auditor's read is recorded, naming the patient.
    let read: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_inbox WHERE actor_id = $1 AND resource_type = 'access_report' \
         AND patient_id = $2 AND outcome = 'success'",
    )
    .bind(w.ua.id)
    .bind(w.p1)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(read, 1, "the auditor's read of the report is on record");

    // An auditor of organization B: 404 for A's patient, as for an unknown id, and on record.
    let fc = super::world::crypto(&app).await;
    let ub = super::world::actor(&app, &fc, w.org_b, "auditor", "auditor B").await;
    let (s, body) = get(&app, &path, &ub).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (s, _) = get(&app, &format!("/v1/patients/{}/access-report", uuid::Uuid::new_v4()), &ub).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let outcomes: Vec<String> = sqlx::query_scalar("SELECT outcome::text FROM audit_inbox WHERE actor_id = $1")
        .bind(ub.id)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2, "each refusal is recorded once: {outcomes:?}");
    assert!(outcomes.iter().all(|o| o != "success"), "{outcomes:?}");
    // Organization B's auditor reads their own patient's report.
    let (s, b) = get(&app, &format!("/v1/patients/{}/access-report", w.p3), &ub).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
