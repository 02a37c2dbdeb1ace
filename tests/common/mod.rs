//! Test harness: a fresh, migrated database per test (so tests run in parallel), dropped when
//! the test ends (even on panic); and `spawn_app`, the real server on port 0 against it.
//!
//! Migrating takes far longer than copying, so every test database is cloned
//! (`CREATE DATABASE … TEMPLATE`) from a template migrated once: `custos_tpl_<hash>`, where the
//! hash covers the migrations and policies this build embeds. Any number of test binaries, runs
//! and worktrees share the cluster safely: a template is built under an advisory lock (taken in
//! the admin database, `postgres` by default) in a database of its own name, marked
//! `IS_TEMPLATE` with `ALLOW_CONNECTIONS false` (a session on the template would make
//! PostgreSQL refuse clones), and only then renamed into place. Templates are never dropped by the harness —
//! another run may be cloning one; a changed schema simply gets a new name. `DROP DATABASE` one
//! by hand (after `ALTER DATABASE … IS_TEMPLATE false`) when no test run is active.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use custos::clock::Clock;
use custos::config::Settings;
use custos::keys::RootKeys;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;
use uuid::Uuid;

pub fn admin_url() -> String {
    std::env::var("CUSTOS_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of our own, migrated; `pool` connects as the superuser (fixtures, catalog).
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    /// A database of our own with every migration and policy applied, cloned from the
    /// template.
    pub async fn new() -> Self {
        let template = template().await;
        let name = format!("custos_test_{}", Uuid::new_v4().simple());
        let mut conn = admin_connection().await;
        let create = |t: &str| format!("CREATE DATABASE {name} TEMPLATE {t}");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(create(template))).execute(&mut conn).await {
            // Someone dropped the template by hand since this process built or found it.
            assert_eq!(db_code(&e).as_deref(), Some("3D000"), "clone {template}: {e}");
            let rebuilt = ensure_template(&mut conn, template).await;
            sqlx::query(sqlx::AssertSqlSafe(create(&rebuilt))).execute(&mut conn).await.expect("clone template");
        }
        conn.close().await.ok();
        Self::connect(name).await
    }

    /// A fresh database without migrations.
    pub async fn empty() -> Self {
        let name = format!("custos_test_{}", Uuid::new_v4().simple());
        create_database(&name).await;
        Self::connect(name).await
    }

    async fn connect(name: String) -> Self {
        let admin: PgConnectOptions = admin_url().parse().expect("CUSTOS_TEST_DATABASE_URL");
        let opts = admin.database(&name);
        let url = opts.to_url_lossy().to_string();
        let pool = PgPoolOptions::new().max_connections(5).connect_with(opts).await.expect("connect test db");
        Self { name, url, pool }
    }

    /// This database's `CUSTOS_DATA_DIR` (removed with the database).
    pub fn data_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("custos-data-{}", self.name))
    }

    pub fn settings(&self, extra: &[(&str, &str)]) -> Settings {
        let mut map: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), self.url.clone()),
            ("CUSTOS_BIND".into(), "127.0.0.1:0".into()),
            ("CUSTOS_DB_MAX_CONNECTIONS".into(), "5".into()),
            // Tests that look at audit_inbox must not race a sequencer; ledger tests opt in.
            ("CUSTOS_SEQUENCER".into(), "off".into()),
            // The development outbox file (invite codes) and dev keys: one folder per test.
            ("CUSTOS_DATA_DIR".into(), self.data_dir().display().to_string()),
        ]);
        for (k, v) in extra {
            map.insert(k.to_string(), v.to_string());
        }
        Settings::from_lookup(|k| map.get(k).cloned()).expect("test settings")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.data_dir());
        let name = self.name.clone();
        // Drop runs outside async context (or during a panic): use a private runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let admin: PgConnectOptions = admin_url().parse().unwrap();
                if let Ok(mut c) = PgConnection::connect_with(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

async fn admin_connection() -> PgConnection {
    let admin: PgConnectOptions = admin_url().parse().expect("CUSTOS_TEST_DATABASE_URL");
    PgConnection::connect_with(&admin).await.expect("connect to the test PostgreSQL server")
}

async fn create_database(name: &str) {
    let mut conn = admin_connection().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create db");
    conn.close().await.ok();
}

fn db_code(e: &sqlx::Error) -> Option<String> {
    e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned())
}

/// Bump when the way a template is built changes, so old templates are not reused.
const TEMPLATE_FORMAT: u32 = 1;
/// Arbitrary constant: the advisory lock key that serialises template builds cluster-wide.
const TEMPLATE_LOCK: i64 = 0x0C05_7050_7E3B;

/// `custos_tpl_<hash>`: the hash covers every embedded migration (version, kind, checksum)
/// and the policy digest, i.e. exactly what `custos::db::migrate::run` would apply.
pub fn template_name() -> String {
    let mut h = Sha256::new();
    h.update(TEMPLATE_FORMAT.to_be_bytes());
    for m in custos::db::migrate::MIGRATOR.iter() {
        h.update(m.version.to_be_bytes());
        h.update(m.migration_type.label().as_bytes());
        h.update((m.checksum.len() as u64).to_be_bytes());
        h.update(&*m.checksum);
    }
    h.update(custos::db::migrate::policy_digest());
    format!("custos_tpl_{}", hex::encode(&h.finalize()[..10]))
}

/// This build's template, built on first use in this process if no run built it before.
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let mut conn = admin_connection().await;
            let name = ensure_template(&mut conn, &template_name()).await;
            conn.close().await.ok();
            name
        })
        .await
}

async fn template_exists(conn: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .expect("look up template")
}

/// Builds template `name` unless it exists; returns `name`.
async fn ensure_template(conn: &mut PgConnection, name: &str) -> String {
    if template_exists(conn, name).await {
        return name.to_owned();
    }
    sqlx::query("SELECT pg_advisory_lock($1)").bind(TEMPLATE_LOCK).execute(&mut *conn).await.expect("lock");
    if !template_exists(conn, name).await {
        // Holding the lock, nobody else is building: a database left by a run that died
        // mid-build is garbage (it may already be marked as a template).
        let stale: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, 'custos_tplbuild_')")
                .fetch_all(&mut *conn)
                .await
                .expect("list stale builds");
        for db in stale {
            for sql in [
                format!("ALTER DATABASE {db} WITH IS_TEMPLATE false"),
                format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await.expect("drop stale build");
            }
        }
        let building = format!("custos_tplbuild_{}", Uuid::new_v4().simple());
        create_database(&building).await;
        let opts = admin_url().parse::<PgConnectOptions>().expect("CUSTOS_TEST_DATABASE_URL").database(&building);
        let pool = PgPoolOptions::new().max_connections(2).connect_with(opts).await.expect("connect template");
        custos::db::migrate::run(&pool).await.expect("migrate template");
        pool.close().await;
        // Complete before it gets its name: the rename is the one step that publishes it.
        for sql in [
            format!("ALTER DATABASE {building} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
            format!("ALTER DATABASE {building} RENAME TO {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await.expect("install template");
        }
    }
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(TEMPLATE_LOCK).execute(&mut *conn).await.expect("unlock");
    name.to_owned()
}

/// The server, running on a random port against its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub keys: RootKeys,
    /// The server's clock: `app.clock.advance(..)` moves time forward for the server.
    pub clock: Arc<Clock>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let db = TestDb::new().await;
    let keys = RootKeys::random();
    let (address, pool, clock) = serve(&db, &keys, extra).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { address, db, pool, client, keys, clock }
}

/// Starts the server on an existing database (e.g. one a test filled first) with the given
/// keys; returns its base URL, its pool and its clock.
pub async fn serve(db: &TestDb, keys: &RootKeys, extra: &[(&str, &str)]) -> (String, PgPool, Arc<Clock>) {
    let settings = db.settings(extra);
    let pool = custos::db::connect(settings.database_url.as_ref().unwrap(), 5).await.expect("app pool");
    let clock = Arc::new(Clock::system());
    let app = custos::startup::Application::build_with_clock(settings, pool.clone(), keys.clone(), clock.clone())
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    (address, pool, clock)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
}

/// Rewrites stored rows as the superuser with ordinary row triggers off
/// (`session_replication_role = replica`): how tests simulate elapsed time or re-arrange a
/// fixture past the integrity triggers that stop the application from doing the same.
pub async fn rewrite_history(pool: &PgPool, sql: &'static str, ids: &[Uuid]) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
    let mut q = sqlx::query(sql);
    for id in ids {
        q = q.bind(id);
    }
    q.execute(&mut *tx).await.unwrap_or_else(|e| panic!("`{sql}`: {e}"));
    tx.commit().await.unwrap();
}
