//! `GET /v1/audit/bundle`: the offline verification bundle over HTTP (the console's exports
//! page downloads it) verifies with `custos verify --bundle`'s checker against the published
//! keys, holds every entry up to the latest checkpoint, and is recorded as an export naming
//! the patients it carries; auditors and admins of the organization only.

use reqwest::StatusCode;
use serde_json::json;

use super::world::call;
use super::{assert_client_error, checkpoint, drain, get, get_raw, published_keys, setup};

#[tokio::test]
async fn the_offline_bundle_downloads_verifies_and_is_recorded_as_an_export() {
    let (app, w) = setup().await;
    // Before any checkpoint: nothing signed to bundle (409), and the refusal is recorded.
    let (s, body) = get(&app, "/v1/audit/bundle", &w.ua).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_client_error(s, &body, "no checkpoint yet");

    let bg = format!("/v1/patients/{}/break-glass", w.p1);
    let reason = json!({ "reason": "patient unconscious in the emergency department" });
    assert_eq!(call(&app, "POST", &bg, &w.ca2, Some(reason)).await.0, StatusCode::CREATED);
    drain(&app).await;
    let size = checkpoint(&app, w.org_a, &w.ua).await.size;

    let resp = app.client.get(app.url("/v1/audit/bundle")).bearer_auth(&w.ua.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let cd = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(cd.starts_with("attachment") && cd.contains(&format!("audit-{}.bundle", w.org_a)), "{cd}");
    let text = resp.text().await.unwrap();
    assert!(text.starts_with(custos::audit::bundle::MAGIC));
    let keys = published_keys(&app).await;
    let report = custos::audit::offline::verify_bundle(text.as_bytes(), Some(&keys), &[], |_| {}).unwrap();
    assert!(report.finding.is_none(), "{:?}", report.finding);
    assert_eq!((report.ledger_id, report.size), (w.org_a, size));
    assert!(!report.keys_from_bundle);

    // One export event, with its figures, naming the break-glass patient.
    let rows: Vec<(Vec<String>, String, Vec<uuid::Uuid>)> = sqlx::query_as(
        "SELECT resource_ids, reason, patient_ids FROM audit_inbox WHERE actor_id = $1 AND action = 'export' \
         AND outcome = 'success'",
    )
    .bind(w.ua.id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (resources, why, patients) = &rows[0];
    assert_eq!(resources, &vec![w.org_a.to_string(), "bundle".to_owned()]);
    assert!(why.starts_with(&format!("offline bundle: {size} entries")), "{why}");
    assert!(patients.contains(&w.p1), "{patients:?}");

    // Admins too; clinicians and patients never; another organization's ledger does not exist.
    assert_eq!(get_raw(&app, "/v1/audit/bundle", &w.aa).await.0, StatusCode::OK);
    for who in [&w.ca1, &w.pa1] {
        let (s, body) = get(&app, "/v1/audit/bundle", who).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    }
    let (s, _) = get(&app, &format!("/v1/audit/bundle?ledger={}", w.org_b), &w.ua).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
