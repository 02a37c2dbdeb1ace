//! The production topology of docs/operations.md with its documented logins and no superuser
//! anywhere after the database administrator's one step (`custos logins create`):
//! migrate (owner), bootstrap (maintenance), serve (web; the `custos` binary for /readyz, the
//! same server in process for a chart read on a clock the test moves for TOTP), a separate
//! sequencer (ledger) signing checkpoints, verify and export (auditor).
//!
//! Roles are cluster-wide: every run uses its own login prefix and database, and drops both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use custos::clock::Clock;
use custos::keys::RootKeys;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

use crate::common::{TestApp, TestDb, admin_url};

const LOGINS: [&str; 6] = ["owner", "web", "ledger", "maint", "verify", "watch"];

/// A database and a set of logins of our own; dropped (database first) when the test ends.
struct Site {
    prefix: String,
    db: String,
    dir: PathBuf,
    keys: RootKeys,
}

impl Site {
    fn new() -> Self {
        let tag = Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("custos-prod-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self { prefix: format!("cp{}_", &tag[..12]), db: format!("custos_prod_{tag}"), dir, keys: RootKeys::random() }
    }

    fn admin_opts(&self) -> PgConnectOptions {
        admin_url().parse().unwrap()
    }

    /// The URL of `login` (a suffix of LOGINS) on our database; `None`: the administrator.
    fn url(&self, login: Option<&str>) -> String {
        let mut o = self.admin_opts().database(&self.db);
        if let Some(l) = login {
            o = o.username(&format!("{}{l}", self.prefix));
        }
        o.to_url_lossy().to_string()
    }

    fn command(&self, login: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.url(login))
            .env("CUSTOS_DATA_DIR", &self.dir)
            .env("CUSTOS_LOG", "warn")
            .env("CUSTOS_KEK", B64.encode(self.keys.kek.expose()))
            .env("CUSTOS_JWT_SIGNING_KEY", B64.encode(self.keys.jwt_signing.expose()))
            .env("CUSTOS_LEDGER_SIGNING_KEY", B64.encode(self.keys.ledger_signing.expose()))
            .env("CUSTOS_CHECKPOINT_MIRROR", self.dir.join("mirror"))
            .current_dir(&self.dir);
        cmd
    }

    fn run(&self, login: Option<&str>, args: &[&str]) -> Output {
        self.command(login, args).output().unwrap()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let (db, prefix, admin) = (self.db.clone(), self.prefix.clone(), self.admin_opts());
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(mut c) = PgConnection::connect_with(&admin).await else { return };
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")))
                    .execute(&mut c)
                    .await;
                for l in LOGINS {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {prefix}{l}")))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Every line of a log is a JSON object.
fn json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_ready(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return r.json().await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill(child: std::process::Child, log: &Path) -> String {
    let mut child = child;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test]
async fn production_logins_run_every_command_without_a_superuser() {
    let site = Site::new();
    // The database administrator's one step: an empty database, the logins, the owner.
    let mut admin = PgConnection::connect_with(&site.admin_opts()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {}", site.db))).execute(&mut admin).await.unwrap();
    let created =
        ok(&site.run(None, &["logins", "create", "--prefix", &site.prefix, "--database", &site.db]), "logins create");
    for l in LOGINS {
        assert!(created.contains(&format!("{}{l}", site.prefix)), "{created}");
    }
    let names: Vec<String> = LOGINS.iter().map(|l| format!("{}{l}", site.prefix)).collect();
    let privileged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_roles WHERE rolname = ANY($1) AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb)",
    )
    .bind(&names)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(privileged, 0, "no login is privileged");

    // Before `migrate`, every other command refuses the empty schema and says what to do.
    let early = site.run(Some("maint"), &["bootstrap", "--org", "Early", "--admin-email", "a@early.example"]);
    assert_eq!(early.status.code(), Some(1), "{}", text(&early.stderr));
    assert!(text(&early.stderr).contains("run `custos migrate`"), "{}", text(&early.stderr));
    let early = site.run(Some("web"), &["serve", "--no-migrate"]);
    assert_eq!(early.status.code(), Some(1), "{}", text(&early.stderr));
    // Not a terminal: the fatal error is a JSON line like every other.
    let fatal = json_lines(&text(&early.stderr));
    let last = fatal.last().unwrap();
    assert_eq!((last["level"].as_str(), last["fields"]["exit_code"].as_u64()), (Some("ERROR"), Some(1)), "{last}");
    assert!(last["fields"]["message"].as_str().unwrap().contains("run `custos migrate`"), "{last}");

    // migrate, as the owner; twice (policies re-applied over the ownership transfers).
    for _ in 0..2 {
        ok(&site.run(Some("owner"), &["migrate"]), "migrate as owner");
    }
    // Only the owner migrates: the web login cannot, and says so.
    let denied = site.run(Some("web"), &["migrate"]);
    assert_eq!(denied.status.code(), Some(1));

    // bootstrap, as the maintenance login; the one-time password is on stdout only.
    let boot = ok(
        &site.run(Some("maint"), &["bootstrap", "--org", "Prod Clinic", "--admin-email", "chief@prod.example"]),
        "bootstrap",
    );
    let otp = boot.lines().find_map(|l| l.split("first login): ").nth(1)).unwrap().trim().to_owned();
    let org: Uuid = boot.lines().find_map(|l| l.split('(').nth(1)).unwrap().trim_end_matches(')').parse().unwrap();

    // serve, as the web login: the binary is ready (its login reads the schema version) and
    // refuses to run a sequencer it may not be.
    let port = free_port();
    let log = site.dir.join("serve.log");
    let child = site
        .command(Some("web"), &["serve", "--no-migrate"])
        .env("CUSTOS_BIND", format!("127.0.0.1:{port}"))
        .env("CUSTOS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let ready = wait_ready(&client, &format!("http://127.0.0.1:{port}/readyz")).await;
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let health = ok(&site.run(None, &["healthcheck", "--url", &readyz]), "healthcheck");
    assert_eq!(health.trim(), "ready");
    let logs = kill(child, &log);
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(ready["ledger"]["error"].as_str().is_some_and(|e| e.contains("not visible")), "{ready}");
    assert!(ready["ledger"].get("last_checkpoint_size").is_none(), "no organization's event count: {ready}");
    assert!(logs.contains("not a member of custos_sequencer"), "{logs}");
    assert!(json_lines(&logs).len() >= 2, "{logs}");
    let down = site.run(None, &["healthcheck", "--url", &readyz]);
    assert_eq!(down.status.code(), Some(1), "a stopped server is not healthy");

    // The same server in process, on the web login, for a chart read (a clock of our own).
    let web_url = site.url(Some("web"));
    let settings = custos::config::Settings::from_lookup(|k| match k {
        "DATABASE_URL" => Some(web_url.clone()),
        "CUSTOS_BIND" => Some("127.0.0.1:0".into()),
        "CUSTOS_SEQUENCER" => Some("off".into()),
        _ => None,
    })
    .unwrap();
    let pool = custos::db::connect(settings.database_url.as_ref().unwrap(), 5).await.unwrap();
    let clock = Arc::new(Clock::system());
    let server =
        custos::startup::Application::build_with_clock(settings, pool.clone(), site.keys.clone(), clock.clone())
            .await
            .unwrap();
    let address = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    let db = TestDb { name: site.db.clone(), url: web_url, pool: pool.clone() };
    let app = TestApp { address, db, pool, client: reqwest::Client::new(), keys: site.keys.clone(), clock };

    let chief = app.onboard("chief@prod.example", &otp).await;
    let (_, doc_otp) = app.create_user(&chief, "doc@prod.example", "clinician").await;
    let doc = app.onboard("doc@prod.example", &doc_otp).await;
    let (s, patient) = app
        .post(
            "/v1/patients",
            Some(&chief.access),
            json!({ "mrn": "MRN-PROD-1", "given_name": "Pat", "family_name": "Prod", "birth_date": "1980-02-29",
                    "sex": "female", "phone": "+1 555 0100", "email": "pat@mail.example", "address": "1 Main St" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{patient}");
    let pid = patient["id"].as_str().unwrap().to_owned();
    let (s, body) = app
        .post(&format!("/v1/patients/{pid}/care-team"), Some(&chief.access), json!({ "clinician_id": doc.id }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, chart) = app.get(&format!("/v1/patients/{pid}"), &doc.access).await;
    assert_eq!(s, StatusCode::OK, "{chart}");
    assert_eq!(chart["given_name"], "Pat", "{chart}");

    // Key rotation and re-encryption, as the maintenance login (rewrap crosses organizations
    // as custos_rewrapper, which touches only sealed columns).
    ok(&site.run(Some("maint"), &["keys", "rotate"]), "keys rotate");
    let rewrap = ok(&site.run(Some("maint"), &["keys", "rewrap"]), "keys rewrap");
    let rewrapped: u64 = rewrap.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rewrapped >= 10, "the patient's and the users' sealed fields: {rewrap}");
    assert!(rewrap.contains(", 0 failed"), "{rewrap}");
    // The server meets values sealed under a version it has not loaded and loads it.
    let (s, chart) = app.get(&format!("/v1/patients/{pid}"), &doc.access).await;
    assert_eq!((s, chart["given_name"].as_str()), (StatusCode::OK, Some("Pat")), "{chart}");

    // The legacy import and its verification, as the maintenance login.
    let export = site.dir.join("legacy");
    let export = export.to_str().unwrap();
    ok(&site.run(None, &["demo", "generate", "--patients", "12", "--seed", "7", "--out", export]), "demo generate");
    let org_arg = org.to_string();
    let imported = ok(&site.run(Some("maint"), &["import", "mongo", "--dir", export, "--org", &org_arg]), "import");
    assert!(imported.contains("BALANCED"), "{imported}");
    let verified = ok(&site.run(Some("maint"), &["import", "verify", "--dir", export, "--org", &org_arg]), "verify");
    assert!(verified.contains("EVERY FIELD EQUAL"), "{verified}");

    // A separate sequencer, as the ledger login, integrates and signs.
    let seq = ok(&site.run(Some("ledger"), &["sequencer", "--once", "--no-migrate"]), "sequencer");
    let integrated: u64 = seq.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(integrated >= 10, "{seq}");
    let (s, note) = {
        let r = app
            .client
            .get(app.url(&format!("/v1/audit/checkpoint?ledger={org}")))
            .bearer_auth(&chief.access)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert_eq!(s, StatusCode::OK, "{note}");
    assert!(note.contains(&format!("/{org}\n")), "a signed checkpoint of the organization's ledger: {note}");
    assert!(site.dir.join("mirror").join(org.to_string()).join("latest.checkpoint").exists(), "mirrored");

    // The privacy monitor, as its own login: a pass over every ledger.
    let watched = ok(&site.run(Some("watch"), &["monitor", "--once"]), "monitor");
    assert!(watched.starts_with("analyzed "), "{watched}");

    // verify and export, as the auditor login.
    let verified = ok(&site.run(Some("verify"), &["verify"]), "verify");
    assert!(verified.contains("ledgers verified"), "{verified}");
    // An auditor holds no secret of the installation: the published key is enough.
    let published: serde_json::Value =
        app.client.get(app.url("/v1/audit/keys")).send().await.unwrap().json().await.unwrap();
    let key = published["keys"][0].as_str().unwrap().to_owned();
    let out = site
        .command(Some("verify"), &["verify", "--key", &key])
        .env("CUSTOS_ENV", "production")
        .env_remove("CUSTOS_KEK")
        .env_remove("CUSTOS_JWT_SIGNING_KEY")
        .env_remove("CUSTOS_LEDGER_SIGNING_KEY")
        .output()
        .unwrap();
    assert!(ok(&out, "verify with the published key only").contains("ledgers verified"));
    let bundle = site.dir.join("org.bundle");
    let out = ok(
        &site.run(Some("verify"), &["export", "--ledger", &org.to_string(), "--out", bundle.to_str().unwrap()]),
        "export",
    );
    assert!(out.contains("exported ledger"), "{out}");
    let offline = ok(&site.run(None, &["verify", "--bundle", bundle.to_str().unwrap()]), "offline verify");
    assert!(offline.contains("\nok"), "{offline}");

    // Every event, including the chart read, reached the ledger under these logins.
    let seq = ok(&site.run(Some("ledger"), &["sequencer", "--once", "--no-migrate"]), "sequencer");
    assert!(seq.starts_with("integrated ") && !seq.starts_with("integrated 0 "), "the export's own event: {seq}");
    ok(&site.run(Some("verify"), &["verify"]), "verify after export");
    drop(app);
}
