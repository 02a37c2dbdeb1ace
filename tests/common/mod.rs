//! Test harness: a fresh, migrated database per test (so tests run in parallel), dropped when
//! the test ends (even on panic); and `spawn_app`, the real server on port 0 against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use custos::clock::Clock;
use custos::config::Settings;
use custos::keys::RootKeys;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
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
    pub async fn new() -> Self {
        let db = Self::empty().await;
        custos::db::migrate::run(&db.pool).await.expect("migrate");
        db
    }

    /// A fresh database without migrations.
    pub async fn empty() -> Self {
        let name = format!("custos_test_{}", Uuid::new_v4().simple());
        let admin: PgConnectOptions = admin_url().parse().expect("CUSTOS_TEST_DATABASE_URL");
        let mut conn = PgConnection::connect_with(&admin).await.expect("connect to the test PostgreSQL server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create db");
        conn.close().await.ok();
        let opts = admin.clone().database(&name);
        let url = opts.to_url_lossy().to_string();
        let pool = PgPoolOptions::new().max_connections(5).connect_with(opts).await.expect("connect test db");
        Self { name, url, pool }
    }

    pub fn settings(&self, extra: &[(&str, &str)]) -> Settings {
        let mut map: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), self.url.clone()),
            ("CUSTOS_BIND".into(), "127.0.0.1:0".into()),
            ("CUSTOS_DB_MAX_CONNECTIONS".into(), "5".into()),
            // Tests that look at audit_inbox must not race a sequencer; ledger tests opt in.
            ("CUSTOS_SEQUENCER".into(), "off".into()),
        ]);
        for (k, v) in extra {
            map.insert(k.to_string(), v.to_string());
        }
        Settings::from_lookup(|k| map.get(k).cloned()).expect("test settings")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
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
