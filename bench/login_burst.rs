//! Login-burst benchmark: does Argon2 starve the server's other requests?
//!
//! Run (release build, needs the local PostgreSQL that the tests use):
//!
//! ```text
//! cargo bench --bench login_burst
//! ```
//!
//! It starts the real server in-process (its own actix workers, default settings: Argon2id
//! m=19456 KiB t=2 p=1, `CUSTOS_PASSWORD_HASH_CONCURRENCY` as configured or its default) on a
//! fresh database, bootstraps an account, then:
//! 1. polls `GET /v1/me` alone for a few seconds (baseline latency);
//! 2. fires bursts of 64 concurrent `POST /v1/auth/login` while the same client keeps
//!    polling `GET /v1/me`;
//!
//! and prints logins/s and the p50/p99 of `/v1/me` without and during the bursts. Set
//! `BENCH_BURSTS` (default 3) and any `CUSTOS_*` variable to compare settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use custos::clock::Clock;
use custos::config::Settings;
use custos::keys::RootKeys;
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection, PgConnection};

const CONCURRENT_LOGINS: usize = 64;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("CUSTOS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("custos_bench_{}", uuid::Uuid::new_v4().simple());
    let admin: sqlx::postgres::PgConnectOptions = admin_url.parse()?;
    let mut conn = PgConnection::connect_with(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    let result = run(admin.clone().database(&name).to_url_lossy().to_string()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await?;
    result
}

async fn run(url: String) -> anyhow::Result<()> {
    let settings = Settings::from_lookup(|k| match k {
        "DATABASE_URL" => Some(url.clone()),
        "CUSTOS_BIND" => Some("127.0.0.1:0".into()),
        "CUSTOS_AUTH_RATE_PER_MINUTE" => Some("1000000".into()),
        "CUSTOS_LOG" => Some("warn".into()),
        _ => std::env::var(k).ok(),
    })?;
    let bursts: usize = std::env::var("BENCH_BURSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let db_url = settings.database_url.clone().ok_or_else(|| anyhow::anyhow!("DATABASE_URL"))?;
    let pool = custos::db::connect(&db_url, settings.db_max_connections).await?;
    custos::db::migrate::run(&pool).await?;
    let keys = RootKeys::random();
    let (hash_slots, workers_note) = (settings.auth.hash_concurrency, std::thread::available_parallelism()?.get());
    let app =
        custos::startup::Application::build_with_clock(settings, pool.clone(), keys.clone(), Arc::new(Clock::system()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let out = custos::cli::bootstrap::run(&pool, &keys, "Bench", "bench@bench.example")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = custos::cli::bootstrap::reveal(&out.one_time_password).to_owned();
    let client = reqwest::Client::new();
    let login = |c: reqwest::Client, base: String, password: String| async move {
        let r = c
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({ "email": "bench@bench.example", "password": password }))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "login failed: {}", r.status());
        Ok::<Value, anyhow::Error>(r.json().await?)
    };
    let first = login(client.clone(), base.clone(), password.clone()).await?;
    let token = first["access_token"].as_str().unwrap_or_default().to_owned();

    // Baseline: /v1/me alone.
    let poll = |stop: Arc<AtomicBool>, min: Duration| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let mut lat = Vec::new();
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) || started.elapsed() < min {
                let t = Instant::now();
                let r = client.get(format!("{base}/v1/me")).bearer_auth(&token).send().await?;
                anyhow::ensure!(r.status().is_success(), "/v1/me failed: {}", r.status());
                let _ = r.bytes().await?;
                lat.push(t.elapsed());
            }
            Ok::<Vec<Duration>, anyhow::Error>(lat)
        }
    };
    let baseline = poll(Arc::new(AtomicBool::new(true)), Duration::from_secs(3)).await?;

    // Bursts of concurrent logins while polling.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(poll(stop.clone(), Duration::ZERO));
    let started = Instant::now();
    for _ in 0..bursts {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENT_LOGINS {
            set.spawn(login(client.clone(), base.clone(), password.clone()));
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during = poller.await??;

    let logins = bursts * CONCURRENT_LOGINS;
    println!(
        "login burst: {bursts} x {CONCURRENT_LOGINS} concurrent logins, {workers_note} CPUs, hash concurrency {hash_slots}"
    );
    println!(
        "  logins: {logins} in {:.2} s = {:.1} logins/s",
        elapsed.as_secs_f64(),
        logins as f64 / elapsed.as_secs_f64()
    );
    println!("  GET /v1/me without burst: {}", summary(baseline));
    println!("  GET /v1/me during burst:  {}", summary(during));
    Ok(())
}

fn summary(mut lat: Vec<Duration>) -> String {
    lat.sort();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    format!("n={} p50={:.2} ms p99={:.2} ms max={:.2} ms", lat.len(), pct(0.50), pct(0.99), pct(1.0))
}
