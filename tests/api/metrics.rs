//! Metrics leak nothing: they are not on the API port, name no organization, keep labels
//! bounded whatever a client sends, and pass `promtool check metrics` (Debian `prometheus`,
//! installed by .ci/run).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::spawn_app;

#[tokio::test]
async fn metrics_have_their_own_listener_bounded_labels_and_no_tenant() {
    let app = spawn_app().await;
    let metrics = custos::metrics::serve("127.0.0.1:0".parse().unwrap(), Some(app.pool.clone())).unwrap();
    let metrics_url = format!("http://{metrics}/metrics");

    // The API port does not serve them.
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);

    for _ in 0..3 {
        app.client.get(app.url("/healthz")).send().await.unwrap();
    }
    app.client.get(app.url("/does-not-exist/123")).send().await.unwrap();
    // Made-up methods: each would be a new series if the label took the client's word.
    for i in 0..20 {
        let m = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        app.client.request(m, app.url("/healthz")).send().await.unwrap();
    }
    // A signed checkpoint of an organization's ledger (its id must not appear).
    let org: uuid::Uuid = sqlx::query_scalar("INSERT INTO organizations (name) VALUES ('Metrics Org') RETURNING id")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let claims = custos::db::Claims::system(Some(org));
    let mut tx = custos::db::begin(&app.pool, &claims).await.unwrap();
    let event =
        custos::audit::AuditEvent::new(custos::audit::Action::Admin, "organization", custos::audit::Outcome::Success);
    custos::audit::record(&mut tx, &custos::audit::AuditContext::from_claims(&claims), &event).await.unwrap();
    tx.commit().await.unwrap();
    let settings = app.db.settings(&[]);
    let signer = custos::audit::signing::LedgerSigner::from_settings(&settings, &app.keys).unwrap();
    let opts = (*app.pool.connect_options()).clone();
    let mut leader = custos::audit::sequencer::Leader::try_acquire(&opts).await.unwrap().unwrap();
    assert!(leader.drain(&signer, &settings.ledger).await.unwrap() >= 1);
    leader.release().await;

    let text = app.client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("custos_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"), "{text}");
    assert!(text.contains("custos_http_request_duration_seconds_bucket"), "latency histogram");
    assert!(text.contains("custos_db_pool_connections"), "pool gauge");
    assert!(text.contains("custos_audit_checkpoints_signed_total"), "{text}");
    assert!(text.contains("custos_audit_last_checkpoint_timestamp_seconds"), "{text}");
    // Raw paths and client-chosen methods never become labels.
    assert!(!text.contains("/does-not-exist/123"));
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(!text.contains("MADEUP"), "{text}");
    assert!(text.contains("method=\"OTHER\""), "{text}");
    // No organization, ledger or user id anywhere.
    assert!(!text.contains(&org.to_string()), "{text}");
    assert!(!text.contains("ledger=\""), "{text}");

    // Every metric has HELP and TYPE, and the exposition is clean.
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; .ci/run installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.trim().is_empty(), "promtool check metrics:\n{report}\n{text}");
}
