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

/// `kill -9` of a running `custos sequencer` process, again and again while events arrive:
/// afterwards every event is in the log exactly once and the ledger verifies — including
/// against the checkpoints it mirrored to a directory, which then expose a rewound database.
#[tokio::test]
async fn kill_dash_nine_loses_and_duplicates_nothing() {
    let w = World::new().await;
    let mirror = std::env::temp_dir().join(format!("custos-mirror-{}", uuid::Uuid::new_v4()));
    let mirror_s = mirror.to_str().unwrap().to_owned();
    let writer = {
        let (pool, org) = (w.db.pool.clone(), w.org_a);
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..40 {
                ids.extend(write_events(&pool, Some(org), 10).await);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            ids
        })
    };
    for round in 0..5u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
            .arg("sequencer")
            .envs(w.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CUSTOS_DATA_DIR", std::env::temp_dir().join("custos-kill9"))
            .env("CUSTOS_LOG", "error")
            .env("CUSTOS_SEQUENCER_BATCH", "7")
            .env("CUSTOS_SEQUENCER_INTERVAL_MS", "5")
            .env("CUSTOS_CHECKPOINT_INTERVAL_MS", "20")
            .env("CUSTOS_CHECKPOINT_MIRROR", &mirror_s)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400 + 100 * round)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let written = writer.await.unwrap();
    // The server notices the killed client's closed socket (and drops its lock) promptly,
    // but not necessarily before we ask.
    let mut attempt = custos(&w, &["sequencer", "--once"]);
    for _ in 0..20 {
        if attempt.0 == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        attempt = custos(&w, &["sequencer", "--once"]);
    }
    assert_eq!(attempt.0, 0, "{}", attempt.1);
    let mut logged: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT event_id FROM audit_log WHERE ledger_id = $1 ORDER BY seq")
            .bind(w.org_a)
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(crate::log_shape(&w.db.pool, w.org_a).await.0, written.len() as i64);
    logged.sort();
    let mut want = written.clone();
    want.sort();
    assert_eq!(logged, want, "every event exactly once");

    // The mirror holds the killed processes' checkpoints; verify uses its latest ones.
    let latest = mirror.join(w.org_a.to_string()).join("latest.checkpoint");
    let mirrored = std::fs::read_to_string(&latest).expect("mirrored checkpoint");
    assert!(mirrored.starts_with(&format!("{}/{}\n", crate::ORIGIN, w.org_a)), "{mirrored}");
    let (code, out) = custos(&w, &["verify", "--checkpoint", latest.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // A superuser rewinds the database to an empty ledger; only the mirror remembers.
    sqlx::raw_sql(
        "ALTER TABLE audit_log DISABLE TRIGGER ALL; ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL; \
         ALTER TABLE audit_tree_nodes DISABLE TRIGGER ALL; DELETE FROM audit_log; DELETE FROM audit_checkpoints; \
         DELETE FROM audit_tree_nodes; DELETE FROM audit_ledgers",
    )
    .execute(&w.db.pool)
    .await
    .unwrap();
    let (code, out) = custos(&w, &["verify", "--checkpoint", latest.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED at index 0: missing index"), "{out}");
    std::fs::remove_dir_all(&mirror).ok();
}
