//! Privacy monitoring over HTTP (docs/privacy-monitoring.md): admins record the facts, the
//! engine analyzes the ledger, auditors review. The done-when case: a clinician with the same
//! family name as a patient on their care team is explained (care team) and still flagged.

use custos::monitoring::config::Thresholds;
use custos::monitoring::engine::{Leader, PassReport};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{ORIGIN, drain};
use crate::clinical::world::{self, Actor, World, call};
use crate::common::{TestApp, spawn_app_with};

async fn setup() -> (TestApp, World) {
    let app = spawn_app_with(&[("CUSTOS_LEDGER_ORIGIN", ORIGIN)]).await;
    let w = world::build(&app).await;
    (app, w)
}

/// Integrates the inbox, then runs the monitor to the end of every ledger.
async fn analyze(app: &TestApp) -> PassReport {
    drain(app).await;
    let fc = world::crypto(app).await;
    let mut l = Leader::try_acquire(&app.db.pool.connect_options()).await.unwrap().expect("monitor lock");
    let r = l.run_pass(&fc, &Thresholds::default()).await.unwrap();
    l.release().await;
    r
}

async fn put(app: &TestApp, who: &Actor, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, "PUT", path, who, Some(body)).await
}

async fn alerts(app: &TestApp, who: &Actor, query: &str) -> Vec<Value> {
    let (s, body) = call(app, "GET", &format!("/v1/review/alerts{query}"), who, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn find<'a>(items: &'a [Value], detector: &str, actor: Uuid) -> &'a Value {
    items
        .iter()
        .find(|a| a["detector"] == detector && a["actor_id"] == actor.to_string())
        .unwrap_or_else(|| panic!("no {detector} alert for {actor} in {items:?}"))
}

#[tokio::test]
async fn namesake_on_the_care_team_is_explained_and_flagged_and_reviewed_in_the_ledger() {
    let (app, w) = setup().await;
    // The world's patients are all "Testperson"; ca1 is on P1's and P2's care teams.
    let (s, body) = put(
        &app,
        &w.aa,
        &format!("/v1/admin/users/{}/profile", w.ca1.id),
        json!({ "family_name": "TESTPERSON", "address": "9 Elm Road" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["family_name_set"], true);
    assert!(body.get("family_name").is_none(), "values are never echoed: {body}");
    let (s, body) = put(&app, &w.aa, &format!("/v1/patients/{}/flags", w.p2), json!({ "confidential": true })).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // ca1 reads P1 (care team); ca2 breaks the glass into P2 (a VIP) and reads it.
    let (s, _) = call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = app
        .post(
            &format!("/v1/patients/{}/break-glass", w.p2),
            Some(&w.ca2.token),
            json!({ "reason": "unconscious in the emergency department, history needed" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _) = call(&app, "GET", &format!("/v1/patients/{}", w.p2), &w.ca2, None).await;
    assert_eq!(s, StatusCode::OK);

    let first = analyze(&app).await;
    assert!(first.accesses >= 3, "{first:?}");

    let items = alerts(&app, &w.ua, "").await;
    let namesake = find(&items, "same_family_name", w.ca1.id);
    assert_eq!(namesake["patient_id"], w.p1.to_string());
    assert_eq!(namesake["status"], "open");
    assert_eq!(find(&items, "break_glass", w.ca2.id)["patient_id"], w.p2.to_string());
    assert_eq!(find(&items, "vip", w.ca2.id)["patient_id"], w.p2.to_string());
    // P2 is on ca1's care team too, and is also a Testperson: flagged as well.
    assert!(items.iter().all(|a| a["detector"] != "vip" || a["actor_id"] != w.ca1.id.to_string()));

    // The evidence: the ledger entry with its index and the explanation that held.
    let id = namesake["id"].as_str().unwrap().to_owned();
    let (s, detail) = call(&app, "GET", &format!("/v1/review/alerts/{id}"), &w.ua, None).await;
    assert_eq!(s, StatusCode::OK, "{detail}");
    assert!(detail["rule"].as_str().unwrap().contains("blind index"));
    let ev = &detail["evidence"][0];
    assert_eq!(ev["explanation"], "care_team", "explained by the care team, and still flagged: {detail}");
    assert!(!ev["missing_explanations"].as_array().unwrap().contains(&json!("care_team")));
    let index = ev["ledger_index"].as_i64().unwrap();
    let event_id: Uuid =
        sqlx::query_scalar("SELECT event_id FROM audit_log WHERE ledger_id = $1 AND seq = $2 AND actor_id = $3")
            .bind(w.org_a)
            .bind(index)
            .bind(w.ca1.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(ev["event_id"], event_id.to_string());
    let explained: i16 =
        sqlx::query_scalar("SELECT explanation FROM monitor_explanations WHERE ledger_id = $1 AND seq = $2")
            .bind(w.org_a)
            .bind(index)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(explained, 2, "stored beside the entry: care_team");

    // Two decisions: the second is a new ledger event referencing the first.
    let path = format!("/v1/review/alerts/{id}/decision");
    let (s, d1) =
        app.post(&path, Some(&w.ua.token), json!({ "outcome": "needs_follow_up", "note": "ask the manager" })).await;
    assert_eq!(s, StatusCode::CREATED, "{d1}");
    let (s, d2) = app.post(&path, Some(&w.ua.token), json!({ "outcome": "appropriate", "note": "her mother" })).await;
    assert_eq!(s, StatusCode::CREATED, "{d2}");
    assert_eq!(d2["supersedes"], d1["event_id"]);
    let ledger: Vec<(Vec<String>, Option<String>)> = sqlx::query_as(
        "SELECT resource_ids, reason FROM audit_inbox WHERE resource_type = 'privacy_alert' AND action = 'update' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(ledger.len(), 2);
    assert!(ledger[1].0.contains(&d1["event_id"].as_str().unwrap().to_owned()), "{ledger:?}");
    assert!(ledger.iter().all(|(_, r)| !r.as_deref().unwrap_or("").contains("mother")), "notes stay out of the ledger");
    let (_, detail) = call(&app, "GET", &format!("/v1/review/alerts/{id}"), &w.ua, None).await;
    assert_eq!(detail["status"], "appropriate");
    assert_eq!(detail["decisions"][1]["note"], "her mother");
    assert_eq!(alerts(&app, &w.ua, "?status=appropriate").await.len(), 1);

    // Filters and pagination.
    let vip = alerts(&app, &w.ua, "?detector=vip").await;
    assert!(!vip.is_empty() && vip.iter().all(|a| a["detector"] == "vip"));
    let mine = alerts(&app, &w.ua, &format!("?actor={}", w.ca2.id)).await;
    assert!(!mine.is_empty() && mine.iter().all(|a| a["actor_id"] == w.ca2.id.to_string()));
    let (_, page) = call(&app, "GET", "/v1/review/alerts?limit=1", &w.ua, None).await;
    let cursor = page["next_cursor"].as_str().expect("a second page").to_owned();
    let (_, page2) = call(&app, "GET", &format!("/v1/review/alerts?limit=1&cursor={cursor}"), &w.ua, None).await;
    assert_ne!(page["items"][0]["id"], page2["items"][0]["id"]);

    // Metrics: the explained share of the day.
    let (s, m) = call(&app, "GET", "/v1/review/metrics", &w.ua, None).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert!(m["explained_share"][0]["accesses"].as_i64().unwrap() >= 3, "{m}");
    assert_eq!(m["decisions_per_reviewer"][0]["appropriate"], 1);
    assert!(m["open_by_age"]["under_1_day"].as_i64().unwrap() >= 2);

    // A second pass over nothing new changes nothing; new activity joins the open alert.
    let before: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT id, event_count FROM monitor_alerts ORDER BY id").fetch_all(&app.db.pool).await.unwrap();
    let again = analyze(&app).await;
    assert!(again.findings == 0, "{again:?}");
    let after: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT id, event_count FROM monitor_alerts ORDER BY id").fetch_all(&app.db.pool).await.unwrap();
    assert_eq!(before, after);
    let (s, _) = call(&app, "GET", &format!("/v1/patients/{}", w.p2), &w.ca2, None).await;
    assert_eq!(s, StatusCode::OK);
    analyze(&app).await;
    let bg = find(&alerts(&app, &w.ua, "?detector=break_glass").await, "break_glass", w.ca2.id).clone();
    assert_eq!(bg["event_count"], 3, "grant + two reads under it: {bg}");
    // The closed namesake alert stays closed; P1 read again opens a new one.
    let (s, _) = call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await;
    assert_eq!(s, StatusCode::OK);
    analyze(&app).await;
    let namesakes = alerts(&app, &w.ua, "?detector=same_family_name").await;
    let statuses: Vec<&str> = namesakes.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"open") && statuses.contains(&"appropriate"), "{statuses:?}");

    // The decisions are in the ledger and verify.
    drain(&app).await;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE ledger_id = $1 AND resource_type = 'privacy_alert' AND action = 'update'",
    )
    .bind(w.org_a)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn only_auditors_review_and_bad_input_is_a_clear_4xx() {
    let (app, w) = setup().await;
    for who in [&w.aa, &w.ca1, &w.pa1] {
        let (s, body) = call(&app, "GET", "/v1/review/alerts", who, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{}: {body}", who.name);
        let (s, _) = call(&app, "GET", "/v1/review/metrics", who, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    for q in [
        "?detector=snooping",
        "?status=closed",
        "?limit=0",
        "?limit=201",
        "?actor=x",
        "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let (s, body) = call(&app, "GET", &format!("/v1/review/alerts{q}"), &w.ua, None).await;
        assert!(s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST, "{q}: {s} {body}");
        assert!(body["error"]["code"].is_string(), "{q}: {body}");
    }
    let unknown = Uuid::now_v7();
    let (s, _) = call(&app, "GET", &format!("/v1/review/alerts/{unknown}"), &w.ua, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let path = format!("/v1/review/alerts/{unknown}/decision");
    let (s, _) = app.post(&path, Some(&w.ua.token), json!({ "outcome": "appropriate" })).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = app.post(&path, Some(&w.ua.token), json!({ "outcome": "fine" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, _) = app.post(&path, Some(&w.ca1.token), json!({ "outcome": "appropriate" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Nothing was decided.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM monitor_decisions").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn admins_keep_the_facts_sealed_validated_and_audited() {
    let (app, w) = setup().await;
    let profile = |id: Uuid| format!("/v1/admin/users/{id}/profile");
    // Only admins; unknown or foreign users are 404; patients have no staff profile.
    let (s, _) = put(&app, &w.ca1, &profile(w.ca2.id), json!({ "family_name": "X" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = put(&app, &w.aa, &profile(Uuid::now_v7()), json!({ "family_name": "X" })).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = put(&app, &w.aa, &profile(w.cb.id), json!({ "family_name": "X" })).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another organization's user");
    let (s, body) = put(&app, &w.aa, &profile(w.pa1.id), json!({ "family_name": "X" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = put(&app, &w.aa, &profile(w.ca2.id), json!({ "family_name": "'-'" })).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("family_name")), "{body}");
    let (s, body) = put(&app, &w.aa, &profile(w.ca2.id), json!({ "patient_id": w.p3 })).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("patient_id")), "{body}");
    let (s, body) = put(
        &app,
        &w.aa,
        &profile(w.ca2.id),
        json!({ "family_name": "Zyskowski", "address": "4 Birch Avenue", "patient_id": w.p1 }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = put(&app, &w.aa, &profile(w.ca1.id), json!({ "patient_id": w.p1 })).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("patient_id")), "{body}");

    // Sealed: neither the name nor the address is stored in the clear.
    let (fam, addr): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT family_name_enc, address_enc FROM staff_profiles WHERE user_id = $1")
            .bind(w.ca2.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    for (sealed, plain) in [(&fam, "Zyskowski"), (&addr, "Birch")] {
        assert!(!sealed.windows(plain.len()).any(|win| win == plain.as_bytes()));
    }
    let fc = world::crypto(&app).await;
    let opened = fc.keyring.open_string("staff_profiles", "family_name_enc", w.ca2.id, &fam).unwrap();
    assert_eq!(opened.as_str(), "Zyskowski");

    // Flags and hours.
    let flags = |p: Uuid| format!("/v1/patients/{p}/flags");
    let (s, body) = put(&app, &w.aa, &flags(w.p1), json!({ "confidential": false, "deceased_on": "2999-01-01" })).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("deceased_on")), "{body}");
    let (s, _) = put(&app, &w.aa, &flags(w.p1), json!({ "confidential": false, "deceased_on": "yesterday" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = put(&app, &w.aa, &flags(w.p3), json!({ "confidential": true })).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another organization's patient");
    let (s, body) = put(&app, &w.aa, &flags(w.p1), json!({ "confidential": true, "deceased_on": "2026-01-31" })).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let hours = "/v1/admin/organization/working-hours";
    let good = json!({ "mon": ["08:00", "18:00"], "sat": ["09:00", "12:00"] });
    let (s, body) = put(&app, &w.aa, hours, json!({ "time_zone": "Mars/Olympus", "days": good })).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("time_zone")), "{body}");
    let (s, body) =
        put(&app, &w.aa, hours, json!({ "time_zone": "Europe/Paris", "days": { "mon": ["18:00", "08:00"] } })).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("days.mon")), "{body}");
    let (s, body) = put(&app, &w.aa, hours, json!({ "time_zone": "Europe/Paris", "days": good })).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["days"]["sat"], json!(["09:00", "12:00"]));

    // Every change is one admin event in the organization's ledger, without the values.
    let events: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT resource_type, reason FROM audit_inbox WHERE actor_id = $1 AND action = 'admin' AND outcome = 'success' \
         AND resource_type IN ('staff_profile', 'patient_flags', 'organization') ORDER BY id",
    )
    .bind(w.aa.id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(kinds, ["staff_profile", "patient_flags", "organization"]);
    for (_, reason) in &events {
        let r = reason.as_deref().unwrap_or("");
        assert!(!r.contains("Zyskowski") && !r.contains("Birch") && !r.contains("2026-01-31"), "{r}");
    }
}

#[tokio::test]
async fn the_app_role_sees_monitoring_rows_only_as_its_claims_allow() {
    let (app, w) = setup().await;
    let (s, _) = put(&app, &w.aa, &format!("/v1/patients/{}/flags", w.p1), json!({ "confidential": true })).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca2, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "ca2 is off the team");
    let (s, body) = app
        .post(
            &format!("/v1/patients/{}/break-glass", w.p1),
            Some(&w.ca2.token),
            json!({ "reason": "unconscious in the emergency department, history needed" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    analyze(&app).await;
    // And an alert of another detector (as the engine would write it), which admins never see.
    sqlx::query(
        "INSERT INTO monitor_alerts (org_id, detector, actor_id, patient_id, first_seen, last_seen, event_count) \
         VALUES ($1, 'vip', $2, $3, now(), now(), 1)",
    )
    .bind(w.org_a)
    .bind(w.ca2.id)
    .bind(w.p1)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM monitor_alerts").fetch_one(&app.db.pool).await.unwrap();
    assert!(total >= 2);
    let count = |role: &'static str, user: Uuid, org: Uuid, table: &'static str| {
        let pool = app.pool.clone();
        async move {
            let claims =
                custos::db::Claims::user(user, org, custos::db::ClaimRole::from_user_role(role).unwrap(), None);
            let mut tx = custos::db::begin(&pool, &claims).await.unwrap();
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            n
        }
    };
    assert_eq!(count("auditor", w.ua.id, w.org_a, "monitor_alerts").await, total);
    for (role, user, org) in [("clinician", w.ca2.id, w.org_a), ("admin", w.ab.id, w.org_b)] {
        for table in ["monitor_alerts", "monitor_alert_events", "monitor_explanations", "monitor_daily_stats"] {
            assert_eq!(count(role, user, org, table).await, 0, "{role} must not read {table}");
        }
    }
    // An admin of the organization reads its break-glass alerts and their evidence (the
    // console's break-glass page says whether each grant was reviewed), and nothing else.
    let (bg_alerts, bg_events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM monitor_alerts WHERE org_id = $1 AND detector = 'break_glass'), \
                (SELECT count(*) FROM monitor_alert_events e JOIN monitor_alerts a ON a.id = e.alert_id \
                 WHERE a.org_id = $1 AND a.detector = 'break_glass')",
    )
    .bind(w.org_a)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(bg_alerts >= 1 && bg_alerts < total, "break-glass and other alerts: {bg_alerts} of {total}");
    assert_eq!(count("admin", w.aa.id, w.org_a, "monitor_alerts").await, bg_alerts);
    assert_eq!(count("admin", w.aa.id, w.org_a, "monitor_alert_events").await, bg_events);
    for table in ["monitor_explanations", "monitor_daily_stats"] {
        assert_eq!(count("admin", w.aa.id, w.org_a, table).await, 0, "admin must not read {table}");
    }
    assert_eq!(count("admin", w.aa.id, w.org_a, "patient_flags").await, 1);
    assert_eq!(count("admin", w.ab.id, w.org_b, "patient_flags").await, 0);
    assert_eq!(count("clinician", w.ca1.id, w.org_a, "patient_flags").await, 0);
    // The app cannot write the engine's tables at all.
    let claims = custos::db::Claims::user(w.ua.id, w.org_a, custos::db::ClaimRole::Auditor, None);
    let mut tx = custos::db::begin(&app.pool, &claims).await.unwrap();
    let e = sqlx::query("UPDATE monitor_watermarks SET next_seq = 0").execute(&mut *tx).await.unwrap_err();
    assert!(e.to_string().contains("permission denied"), "{e}");
}

#[tokio::test]
async fn openapi_documents_the_monitoring_routes() {
    let app = spawn_app_with(&[]).await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("get", "/v1/review/alerts"),
        ("get", "/v1/review/alerts/{id}"),
        ("post", "/v1/review/alerts/{id}/decision"),
        ("get", "/v1/review/metrics"),
        ("put", "/v1/admin/users/{id}/profile"),
        ("put", "/v1/patients/{id}/flags"),
        ("put", "/v1/admin/organization/working-hours"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing");
    }
    let params = doc["paths"]["/v1/review/alerts"]["get"]["parameters"].as_array().unwrap();
    // The filters are query parameters; the one header is the shared X-Request-Id.
    assert!(params.iter().all(|p| p["in"] == "query" || p["name"] == "X-Request-Id"), "{params:?}");
    assert_eq!(params.iter().filter(|p| p["in"] == "query").count(), 8, "{params:?}");
    // The routes the clinical document already had are still there.
    assert!(paths.contains_key("/v1/patients/{id}"));
}

/// The console's break-glass page (src/monitoring/grants.rs): a grant is linked to its own
/// review-queue alert through its ledger entry, "not reviewed" while the alert is open and
/// reviewed once an auditor closed it; admins see break-glass alerts for this and no other.
#[tokio::test]
async fn a_break_glass_grant_is_reviewed_once_its_alert_is_closed() {
    use custos::db::{ClaimRole, Claims};
    use custos::monitoring::grants;

    let (app, w) = setup().await;
    let (s, body) = app
        .post(
            &format!("/v1/patients/{}/break-glass", w.p2),
            Some(&w.ca2.token),
            json!({ "reason": "unconscious in the emergency department, history needed" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let grant: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    // A read at night by ca1 of P1 is no break-glass: other detectors' alerts may exist too.
    let (s, _) = call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await;
    assert_eq!(s, StatusCode::OK);
    let (org, p2) = (w.org_a, w.p2);
    let review_of = |who: &Actor, role: ClaimRole| {
        let claims = Claims::user(who.id, org, role, None);
        let pool = app.pool.clone();
        async move {
            let mut tx = custos::db::begin(&pool, &claims).await.unwrap();
            let r = grants::reviews(&mut tx, org, &[(grant, p2)]).await.unwrap();
            let others: i64 = sqlx::query_scalar("SELECT count(*) FROM monitor_alerts WHERE detector <> 'break_glass'")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            (r.get(&grant).cloned(), others)
        }
    };
    // Before the monitor ran: not in the queue yet.
    assert_eq!(review_of(&w.aa, ClaimRole::Admin).await.0, None);
    analyze(&app).await;
    let (admin_view, others) = review_of(&w.aa, ClaimRole::Admin).await;
    let open = admin_view.expect("the grant's alert");
    assert_eq!(open.status, "open");
    assert!(!open.reviewed());
    assert_eq!(others, 0, "admins read break-glass alerts only");
    let (auditor_view, _) = review_of(&w.ua, ClaimRole::Auditor).await;
    assert_eq!(auditor_view.as_ref(), Some(&open));
    // Clinicians see no alert at all.
    assert_eq!(review_of(&w.ca2, ClaimRole::Clinician).await.0, None);

    let bg = find(&alerts(&app, &w.ua, "?detector=break_glass").await, "break_glass", w.ca2.id).clone();
    assert_eq!(bg["id"], open.alert_id.to_string());
    let path = format!("/v1/review/alerts/{}/decision", open.alert_id);
    let (s, body) = app.post(&path, Some(&w.ua.token), json!({ "outcome": "appropriate" })).await;
    assert!(s.is_success(), "{s} {body}");
    let closed = review_of(&w.aa, ClaimRole::Admin).await.0.expect("still linked");
    assert_eq!((closed.alert_id, closed.status.as_str()), (open.alert_id, "appropriate"));
    assert!(closed.reviewed());
}
