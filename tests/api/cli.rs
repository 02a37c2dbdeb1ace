//! The `custos` binary as an operator runs it: exit codes, bootstrap, migrate, and a
//! graceful shutdown of `serve` on SIGTERM.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::TestDb;

fn custos(db: &TestDb, data_dir: &std::path::Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("CUSTOS_DATA_DIR", data_dir)
        .env("CUSTOS_LOG", "warn")
        .current_dir(data_dir);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("custos-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn bootstrap_creates_org_and_admin_once() {
    let db = TestDb::new().await;
    let dir = tempdir();
    let out =
        custos(&db, &dir, &["bootstrap", "--org", "St. Mary Clinic", "--admin-email", "Admin@StMary.example"], &[]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let password = stdout.lines().find_map(|l| l.split("first login): ").nth(1)).unwrap().trim().to_owned();
    assert_eq!(password.chars().count(), 20);

    let (role, must_change, hash, email_enc): (String, bool, String, Vec<u8>) =
        sqlx::query_as("SELECT role::text, must_change_password, password_hash, email_enc FROM users")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(role, "admin");
    assert!(must_change);
    assert!(hash.starts_with("$argon2id$"));
    // The one-time password verifies against the stored hash; the email is sealed.
    let verified = custos::auth::password::verify_password(&password.clone().into(), &hash);
    assert!(verified.is_ok());
    assert!(!String::from_utf8_lossy(&email_enc).to_lowercase().contains("stmary"));
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_inbox i JOIN organizations o ON o.id = i.org_id \
         WHERE i.action = 'admin' AND i.resource_type = 'organization' AND o.name = 'St. Mary Clinic'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(events, 1, "bootstrap is audited");

    // Same email again (any case): refused, nothing created, exit 1.
    let again =
        custos(&db, &dir, &["bootstrap", "--org", "Other Clinic", "--admin-email", "admin@stmary.example"], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
    assert!(!text(&again.stderr).contains("stmary"), "the email is not echoed");
    // Same organization name (any case), new email: refused by the unique index, nothing created.
    let again = custos(&db, &dir, &["bootstrap", "--org", "st. mary clinic", "--admin-email", "b@other.example"], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
    let orgs: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations").fetch_one(&db.pool).await.unwrap();
    assert_eq!(orgs, 1);
}

#[tokio::test]
async fn usage_and_configuration_errors_exit_2() {
    let db = TestDb::new().await;
    let dir = tempdir();
    let bad_email = custos(&db, &dir, &["bootstrap", "--org", "X", "--admin-email", "not-an-email"], &[]);
    assert_eq!(bad_email.status.code(), Some(2), "{}", text(&bad_email.stderr));
    let missing_arg = custos(&db, &dir, &["bootstrap", "--org", "X"], &[]);
    assert_eq!(missing_arg.status.code(), Some(2));
    let prod_dir = tempdir();
    let prod_serve = custos(&db, &prod_dir, &["serve"], &[("CUSTOS_ENV", "production")]);
    assert_eq!(prod_serve.status.code(), Some(2));
    assert!(text(&prod_serve.stderr).contains("CUSTOS_KEK"), "{}", text(&prod_serve.stderr));
    assert!(!prod_dir.join("dev-keys").exists(), "production never writes development keys");
    let bad_bind = custos(&db, &dir, &["serve"], &[("CUSTOS_BIND", "nowhere")]);
    assert_eq!(bad_bind.status.code(), Some(2));
}

#[tokio::test]
async fn migrate_is_repeatable() {
    let db = TestDb::empty().await;
    let dir = tempdir();
    for _ in 0..2 {
        let out = custos(&db, &dir, &["migrate"], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert!(custos::db::migrate::status(&db.pool).await.unwrap().ready());
}

#[tokio::test]
async fn serve_shuts_down_gracefully_on_sigterm() {
    let db = TestDb::new().await;
    let dir = tempdir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Logs go to a file: a pipe nobody reads while we poll would fill up and block the server.
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_custos"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("CUSTOS_DATA_DIR", &dir)
        .env("CUSTOS_BIND", format!("127.0.0.1:{port}"))
        .env("CUSTOS_SHUTDOWN_TIMEOUT_SECS", "5")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Development keys were generated once, privately.
    assert!(dir.join("dev-keys").exists());
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("shut down cleanly"), "{logs}");
    assert!(logs.contains("DEVELOPMENT keys"), "the dev-key warning is logged");
}
