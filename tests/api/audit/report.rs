//! `GET /v1/patients/{id}/access-report`: the HIPAA accounting of disclosures. The patient
//! themself and their organization's admins read it; to anyone else it does not exist. Every
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
    for who in [&w.pa2, &w.ca1, &w.ca2, &w.ua, &w.pb, &w.cb, &w.ab] {
        let (s, body) = get(&app, &path, who).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{}: {body}", who.name);
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (s, _) = get(&app, &format!("/v1/patients/{}/access-report", w.p3), &w.aa).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another org's patient");
    let (s, _) = get(&app, &format!("/v1/patients/{}/access-report", uuid::Uuid::new_v4()), &w.aa).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no such patient");
    assert_eq!(app.client.get(app.url(&path)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let (s, body) = get(&app, "/v1/patients/not-a-uuid/access-report", &w.aa).await;
    assert_client_error(s, &body, "path id");
    for q in ["cursor=abc", "cursor=-5", "limit=0", "limit=5000", "limit=many"] {
        let (s, body) = get(&app, &format!("{path}?{q}"), &w.pa1).await;
        assert_client_error(s, &body, q);
    }
}
