//! A run killed mid-way (the process aborts just before a commit, as with `kill -9`: no
//! unwinding, the connection simply dies) and then re-run ends in exactly the state of one
//! clean run. Runs the real binary, as an operator would.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use base64::Engine as _;
use custos::keys::RootKeys;

use crate::harness::{self, Env};

fn custos_import(env: &Env, extra: &[&str]) -> Output {
    let b64 = |k: &custos::keys::KeyBytes| base64::engine::general_purpose::STANDARD.encode(k.expose());
    let data_dir = env.dir.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let org = env.org.to_string();
    let dir = env.dir.display().to_string();
    let mut args = vec!["import", "mongo", "--dir", dir.as_str(), "--org", org.as_str(), "--batch-size", "16"];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &env.db.url)
        .env("CUSTOS_DATA_DIR", &data_dir)
        .env("CUSTOS_LOG", "warn")
        .env("CUSTOS_KEK", b64(&env.keys.kek))
        .env("CUSTOS_JWT_SIGNING_KEY", b64(&env.keys.jwt_signing))
        .env("CUSTOS_LEDGER_SIGNING_KEY", b64(&env.keys.ledger_signing))
        .output()
        .unwrap()
}

async fn mapped(env: &Env) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM legacy_id_map").fetch_one(&env.db.pool).await.unwrap()
}

#[tokio::test]
async fn killed_runs_then_a_rerun_equal_one_clean_run() {
    let (dir, manifest) = harness::export(60, 21, 0.08);
    let clean = harness::env_for(dir.clone(), custos::demo::Manifest::default(), RootKeys::random()).await;
    let clean_report = clean.import(&clean.options()).await;
    assert!(clean_report.balanced, "{}", clean_report.render());
    let total_mapped = mapped(&clean).await;

    let crashed = harness::env_for(dir, manifest, RootKeys::random()).await;
    // First crash: in the middle of the conversations; second: among the activity logs.
    let mut previous = 0;
    for batch in ["6", "14"] {
        let out = custos_import(&crashed, &["--crash-before-commit", batch]);
        assert_eq!(out.status.signal(), Some(6), "the run died mid-way: {}", String::from_utf8_lossy(&out.stderr));
        let now = mapped(&crashed).await;
        assert!(now > previous && now < total_mapped, "partial state: {previous} < {now} < {total_mapped}");
        previous = now;
    }
    let out = custos_import(&crashed, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["balanced"], true, "{report}");
    let already: u64 =
        report["collections"].as_array().unwrap().iter().map(|c| c["already_imported"].as_u64().unwrap()).sum();
    assert!(already > 0, "the re-run skipped what the killed runs committed");

    assert_eq!(mapped(&crashed).await, total_mapped);
    let (a, b) = (crashed.dump().await, clean.dump().await);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}
