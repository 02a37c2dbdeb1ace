//! The `custos` binary end to end: verify (exit 0 clean, 1 with the first bad index), export,
//! and offline verification of the exported bundle with a pinned key.

use std::process::Command;

use crate::{World, write_events};

fn custos(w: &World, args: &[&str]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("custos-cli-{}", uuid::Uuid::new_v4()));
    let out = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(args)
        .envs(w.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("CUSTOS_DATA_DIR", &dir)
        .env("CUSTOS_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn verify_export_and_offline_verify_from_the_command_line() {
    let w = World::new().await;
    write_events(&w.db.pool, Some(w.org_a), 12).await;
    write_events(&w.db.pool, None, 2).await;
    let (code, out) = custos(&w, &["sequencer", "--once"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = custos(&w, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all 2 ledgers verified"), "{out}");

    let file = std::env::temp_dir().join(format!("custos-bundle-{}.txt", uuid::Uuid::new_v4()));
    let path = file.to_str().unwrap();
    let (code, out) = custos(&w, &["export", "--ledger", &w.org_a.to_string(), "--out", path]);
    assert_eq!(code, 0, "{out}");
    let key = w.signer.verifier().encode();
    let (code, out) = custos(&w, &["verify", "--bundle", path, "--key", &key]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("12 entries") && out.ends_with("ok\n"), "{out}");
    // The export is itself audited.
    let exports: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_inbox WHERE action = 'export' AND org_id = $1")
        .bind(w.org_a)
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(exports, 1);

    // Tampered in the database: exit 1, first bad index named.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE audit_log DISABLE TRIGGER ALL; \
         UPDATE audit_log SET outcome = 'denied' WHERE ledger_id = '{}' AND seq = 5; \
         ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only",
        w.org_a
    )))
    .execute(&w.db.pool)
    .await
    .unwrap();
    let (code, out) = custos(&w, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED at index 5: leaf mismatch"), "{out}");
    std::fs::remove_file(&file).ok();
}

/// `custos serve` runs a sequencer candidate: events written through the app's path are
/// integrated and signed without anything else running.
#[tokio::test]
async fn the_server_runs_the_sequencer() {
    let app =
        crate::common::spawn_app_with(&[("CUSTOS_SEQUENCER", "on"), ("CUSTOS_CHECKPOINT_INTERVAL_MS", "50")]).await;
    let org: uuid::Uuid = sqlx::query_scalar("INSERT INTO organizations (name) VALUES ('S') RETURNING id")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    crate::write_events(&app.db.pool, Some(org), 5).await;
    for _ in 0..300 {
        let signed: Option<i64> = sqlx::query_scalar("SELECT checkpoint_size FROM audit_ledgers WHERE ledger_id = $1")
            .bind(org)
            .fetch_optional(&app.db.pool)
            .await
            .unwrap();
        if signed == Some(5) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the server's sequencer never integrated the events");
}
