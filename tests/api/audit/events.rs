//! `GET /v1/audit/events`: every filter narrows the org's ledger as it says, cursor pages
//! add up to the whole listing, each item carries its position and hashes, the listing is
//! itself audited; only the org's auditors and admins list it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::world::call;
use super::{assert_client_error, drain, get, setup};

type Pred<'a> = Box<dyn Fn(&Value) -> bool + 'a>;

const REASON: &str = "patient unconscious in the emergency department";

fn items(body: &Value) -> Vec<Value> {
    body["items"].as_array().unwrap_or_else(|| panic!("items in {body}")).clone()
}

#[tokio::test]
async fn events_filter_paginate_and_carry_ledger_positions() {
    let (app, w) = setup().await;
    let chart = |p| format!("/v1/patients/{p}");
    assert_eq!(call(&app, "GET", &chart(w.p1), &w.ca1, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", &chart(w.p1), &w.ca2, None).await.0, StatusCode::NOT_FOUND, "off the care team");
    let bg = format!("/v1/patients/{}/break-glass", w.p1);
    assert_eq!(call(&app, "POST", &bg, &w.ca2, Some(json!({ "reason": REASON }))).await.0, StatusCode::CREATED);
    assert_eq!(call(&app, "GET", &chart(w.p1), &w.ca2, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", &chart(w.p2), &w.ca1, None).await.0, StatusCode::OK);
    drain(&app).await;

    let base = format!("/v1/audit/events?ledger={}&limit=1000", w.org_a);
    let (s, body) = get(&app, &base, &w.ua).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let all = items(&body);
    assert!(all.len() >= 8, "{body}");
    assert!(body["next_cursor"].is_null());
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["seq"], i as u64, "index order, contiguous");
        assert_eq!(e["ledger_id"], w.org_a.to_string());
        for h in ["leaf_hash", "chain_hash"] {
            assert_eq!(super::hash(&e[h]).len(), 32, "{h} is base64 of 32 bytes");
        }
    }
    let (s, own) = get(&app, "/v1/audit/events?limit=1000", &w.aa).await;
    assert_eq!(s, StatusCode::OK, "the caller's own ledger by default");
    assert_eq!(items(&own), all);

    // Each filter: a non-empty subset, exactly the matching events.
    let count = |pred: &dyn Fn(&Value) -> bool| all.iter().filter(|e| pred(e)).count();
    let p1 = w.p1.to_string();
    let ca2 = w.ca2.id.to_string();
    let cases: Vec<(String, Pred<'_>)> = vec![
        (format!("patient={p1}"), Box::new(|e: &Value| e["patient_id"] == p1.as_str())),
        (format!("actor={ca2}"), Box::new(|e: &Value| e["actor_id"] == ca2.as_str())),
        ("action=break_glass".into(), Box::new(|e: &Value| e["action"] == "break_glass")),
        ("action=read".into(), Box::new(|e: &Value| e["action"] == "read")),
        ("outcome=denied".into(), Box::new(|e: &Value| e["outcome"] == "denied")),
        ("outcome=success".into(), Box::new(|e: &Value| e["outcome"] == "success")),
        ("break_glass=true".into(), Box::new(|e: &Value| e["break_glass"] == true)),
        ("break_glass=false".into(), Box::new(|e: &Value| e["break_glass"] == false)),
        (
            format!("patient={p1}&actor={ca2}&break_glass=true"),
            Box::new(|e: &Value| {
                e["patient_id"] == p1.as_str() && e["actor_id"] == ca2.as_str() && e["break_glass"] == true
            }),
        ),
    ];
    for (q, pred) in &cases {
        let (s, body) = get(&app, &format!("{base}&{q}"), &w.ua).await;
        assert_eq!(s, StatusCode::OK, "{q}: {body}");
        let got = items(&body);
        assert!(!got.is_empty(), "{q} matches something");
        assert!(got.iter().all(pred.as_ref()), "{q}: {body}");
        assert_eq!(got.len(), count(pred.as_ref()), "{q}: all of them");
    }
    let (_, bg) = get(&app, &format!("{base}&break_glass=true&action=read"), &w.ua).await;
    let bg = items(&bg);
    assert_eq!(bg.len(), 1, "the break-glass read");
    // The ledger carries a commitment to the sealed reason, never its text (issue 19).
    let r = bg[0]["reason"].as_str().unwrap();
    assert!(r.starts_with("break-glass grant ") && r.contains("hmac-sha256:") && !r.contains(REASON), "{r}");

    // Time range: [from, to) on occurred_at.
    let mid = all[all.len() / 2]["occurred_at"].as_str().unwrap().to_owned();
    let (s, after) = get(&app, &format!("{base}&from={mid}"), &w.ua).await;
    assert_eq!(s, StatusCode::OK, "{after}");
    assert!(items(&after).iter().all(|e| e["occurred_at"].as_str().unwrap() >= mid.as_str()));
    let (_, before) = get(&app, &format!("{base}&to={mid}"), &w.ua).await;
    assert!(items(&before).iter().all(|e| e["occurred_at"].as_str().unwrap() < mid.as_str()));
    assert_eq!(items(&after).len() + items(&before).len(), all.len(), "the two halves cover the ledger");
    let (_, empty) = get(&app, &format!("{base}&from={mid}&to={mid}"), &w.ua).await;
    assert!(items(&empty).is_empty());

    // Cursor pages of 3 add up to the whole listing, in order.
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = format!(
            "/v1/audit/events?ledger={}&limit=3{}",
            w.org_a,
            cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default()
        );
        let (s, page) = get(&app, &path, &w.ua).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let got = items(&page);
        assert!(got.len() <= 3);
        seqs.extend(got.iter().map(|e| e["seq"].as_u64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seqs, (0..all.len() as u64).collect::<Vec<_>>());

    // Listing the ledger is itself recorded.
    let listed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_inbox WHERE actor_id = $1 AND action = 'read' AND resource_type = 'audit_log'",
    )
    .bind(w.ua.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(listed as usize >= cases.len());
}

#[tokio::test]
async fn events_are_for_the_orgs_auditors_and_admins_and_bad_input_is_4xx() {
    let (app, w) = setup().await;
    drain(&app).await;
    let a = w.org_a;
    for who in [&w.ca1, &w.pa1] {
        let (s, body) = get(&app, &format!("/v1/audit/events?ledger={a}"), who).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{}: {body}", who.name);
        let (s, _) = get(&app, "/v1/audit/events", who).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{}", who.name);
    }
    let (s, _) = get(&app, &format!("/v1/audit/events?ledger={a}"), &w.ab).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another org's admin");
    let (s, own) = get(&app, "/v1/audit/events", &w.ab).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!items(&own).is_empty());
    assert!(items(&own).iter().all(|e| e["ledger_id"] == w.org_b.to_string()), "only their own ledger");

    for q in [
        "cursor=abc",
        "cursor=-1",
        "cursor=99999999999999999999999",
        "limit=0",
        "limit=100000",
        "limit=x",
        "action=nope",
        "outcome=maybe",
        "break_glass=perhaps",
        "patient=not-a-uuid",
        "actor=1",
        "from=yesterday",
        "from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
        "ledger=xyz",
    ] {
        let (s, body) = get(&app, &format!("/v1/audit/events?{q}"), &w.ua).await;
        assert_client_error(s, &body, q);
    }
}
