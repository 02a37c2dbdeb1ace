//! Privacy-monitoring bench (docs/privacy-monitoring.md, "Evaluation"):
//!
//! ```text
//! cargo bench --bench monitor -- [CLINICIANS] [WEEKS] [SEED]     # defaults 400 4 1
//! ```
//!
//! 1. Detection quality: `demo simulate` (48 clinicians, 4 weeks, the seed) into a fresh
//!    database, the engine over its ledger; prints per-detector precision and recall against
//!    the injected labels and the explained share.
//! 2. Throughput: a larger simulated organization (CLINICIANS, WEEKS) in the same database;
//!    the engine analyzes its whole ledger from scratch, timed. Baseline in the same run: the
//!    same ledger rows read in the same batches with no analysis (what the engine cannot go
//!    below), reported as a ratio.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[allow(dead_code)]
mod common;

use std::time::Instant;

use custos::audit::sequencer::Leader as Sequencer;
use custos::audit::signing::LedgerSigner;
use custos::crypto::Kek;
use custos::demo::simulate::{self, Labels, Options};
use custos::keys::RootKeys;
use custos::monitoring::config::Thresholds;
use custos::monitoring::engine::Leader;
use sqlx::PgPool;

use crate::common::BenchDb;

const ORIGIN: &str = "bench.custos/ledger";

async fn simulate_into(db: &BenchDb, keys: &RootKeys, clinicians: u32, weeks: u32, seed: u64) -> Labels {
    let out = std::env::temp_dir().join(format!("custos-bench-sim-{seed}-{clinicians}"));
    let opts = Options { seed, weeks, clinicians, out: out.clone() };
    let t = Instant::now();
    let sim = simulate::run(&db.pool, keys, &opts).await.unwrap();
    let signer = LedgerSigner::new(ORIGIN, keys).unwrap();
    let settings =
        custos::config::Settings::from_lookup(|k| (k == "CUSTOS_LEDGER_ORIGIN").then(|| ORIGIN.into())).unwrap();
    let mut seq = Sequencer::try_acquire(&db.pool.connect_options()).await.unwrap().unwrap();
    seq.drain(&signer, &settings.ledger).await.unwrap();
    seq.release().await;
    eprintln!(
        "simulated {} events ({clinicians} clinicians, {weeks} weeks) in {:.1} s",
        sim.events,
        t.elapsed().as_secs_f64()
    );
    let labels: Labels = serde_json::from_slice(&std::fs::read(out.join("labels.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&out).ok();
    labels
}

/// The engine's columns (bench/monitor.rs mirrors `monitoring::engine::fetch`).
type Row = (
    i64,
    chrono::DateTime<chrono::Utc>,
    Option<uuid::Uuid>,
    Option<String>,
    String,
    Option<uuid::Uuid>,
    Vec<uuid::Uuid>,
    bool,
    i32,
    i32,
    chrono::NaiveDate,
);

/// Reads the organization's ledger in the engine's batches and columns, analyzing nothing.
async fn read_only(pool: &PgPool, org: uuid::Uuid, batch: i64) -> u64 {
    let mut conn = pool.acquire().await.unwrap();
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(seq) + 1, 0) FROM audit_log WHERE ledger_id = $1")
        .bind(org)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let mut n = 0;
    let mut from = 0;
    while from < head {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, occurred_at, actor_id, actor_role, resource_type, patient_id, patient_ids, break_glass, \
                        extract(isodow FROM l.local)::int4, \
                        (extract(hour FROM l.local) * 60 + extract(minute FROM l.local))::int4, l.local::date \
                 FROM audit_log, LATERAL (SELECT occurred_at AT TIME ZONE 'Asia/Tokyo' AS local) AS l \
                 WHERE ledger_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
        )
        .bind(org)
        .bind(from)
        .bind(from + batch)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        n += rows.len() as u64;
        from += batch;
    }
    n
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (clinicians, weeks, seed) = (arg(0, 400) as u32, arg(1, 4) as u32, arg(2, 1));
    let db = BenchDb::new(4).await;
    let keys = RootKeys::random();
    let th = Thresholds::default();

    // 1. Detection quality.
    let labels = simulate_into(&db, &keys, 48, 4, seed).await;
    let crypto = custos::crypto::store::load(&db.pool, &Kek::from_bytes(*keys.kek.expose())).await.unwrap();
    let mut l = Leader::try_acquire(&db.pool.connect_options()).await.unwrap().unwrap();
    let r = l.run_pass(&crypto, &th).await.unwrap();
    let eval = simulate::evaluate(&db.pool, &labels).await.unwrap();
    println!(
        "detection quality (seed {seed}, 48 clinicians, 4 weeks, {} ledger entries, {} injected cases)",
        r.entries,
        labels.cases.len()
    );
    println!("{:<18} {:>6} {:>6} {:>7} {:>10} {:>7}", "detector", "cases", "found", "alerts", "precision", "recall");
    for (code, s) in &eval.detectors {
        println!(
            "{code:<18} {:>6} {:>6} {:>7} {:>10.3} {:>7.3}",
            s.labels,
            s.found,
            s.alerts,
            s.precision(),
            s.recall()
        );
    }
    println!(
        "explained share: {:.4} ({} of {} accesses); explained-and-flagged cases shown with their explanation: {}",
        eval.explained_share(),
        eval.explained,
        eval.accesses,
        eval.explained_and_flagged
    );

    // 2. Throughput on a larger organization, from scratch.
    let big = simulate_into(&db, &keys, clinicians, weeks, seed + 1).await;
    let t = Instant::now();
    let rows = read_only(&db.pool, big.org_id, th.batch_size).await;
    let baseline = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = l.run_pass(&crypto, &th).await.unwrap();
    let took = t.elapsed().as_secs_f64();
    l.release().await;
    println!(
        "throughput ({clinicians} clinicians, {weeks} weeks): {} entries analyzed in {took:.2} s = {:.0} entries/s",
        r.entries,
        r.entries as f64 / took
    );
    println!(
        "baseline (same rows read, no analysis): {rows} rows in {baseline:.2} s = {:.0} rows/s; engine/baseline time ratio {:.2}",
        rows as f64 / baseline,
        took / baseline
    );
    db.drop().await;
}
