//! The console's event browser on a large ledger: one page (50 rows, newest first, as the
//! console asks) per filter through `audit::query::list_events_by_time`, as an auditor, in the
//! request's transaction (`db::begin` with the auditor's claims, so RLS applies), first pages
//! and pages after a random cursor. Baseline, same run and connection pool: one event read by
//! its primary key `(ledger_id, seq)` in the same kind of transaction.
//!
//! The ledger is generated in SQL as the superuser (`generate_series`, no sequencer, no hashes
//! that verify: the query never reads them), with a realistic spread: 10 000 patients (80 % of
//! events name one, 2 % several in `patient_ids`), 500 actors, mostly reads and successes, rare
//! denials, break-glass and exports, one event every 30 s; plus a second organization's ledger
//! of a tenth of the size, so `ledger_id` is not the whole table.

use std::time::Instant;

use chrono::{Duration, Utc};
use custos::audit::query::{self, EventFilter, TimeCursor};
use custos::audit::{Action, Outcome};
use custos::db::{ClaimRole, Claims};
use rand::RngExt;
use uuid::Uuid;

use crate::common::{BenchDb, percentile};

const CHUNK: i64 = 250_000;
const PAGE: i64 = 50;

/// Deterministic ids derived in SQL and here alike: `md5(kind || n)::uuid`.
fn sql_id(kind: &str, n: &str) -> String {
    format!("md5('{kind}' || ({n})::text)::uuid")
}

async fn load(pool: &sqlx::PgPool, org: Uuid, n: i64) {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET synchronous_commit = off").execute(&mut *conn).await.unwrap();
    let patient = sql_id("patient", "abs(hashint8(i)::int8) % 10000");
    let actor = sql_id("actor", "abs(hashint8(i + 1)::int8) % 500");
    let mut lo = 0;
    while lo < n {
        let hi = (lo + CHUNK).min(n);
        let sql = format!(
            "INSERT INTO audit_log (ledger_id, seq, event_id, occurred_at, org_id, actor_id, actor_role, action, \
               resource_type, resource_ids, patient_id, patient_ids, outcome, break_glass, imported, reason, \
               leaf_hash, chain_hash) \
             SELECT $1, i, gen_random_uuid(), $4::timestamptz - make_interval(secs => ($3 - i) * 30), $1, {actor}, \
                    'clinician', \
                    (CASE WHEN r < 700 THEN 'read' WHEN r < 800 THEN 'update' WHEN r < 880 THEN 'login' \
                          WHEN r < 900 THEN 'login_failed' WHEN r < 990 THEN 'create' WHEN r < 998 THEN 'admin' \
                          WHEN r < 999 THEN 'export' ELSE 'break_glass' END)::audit_action, \
                    'patient', '{{}}', CASE WHEN r % 5 <> 0 THEN {patient} END, \
                    CASE WHEN r % 50 = 1 THEN ARRAY[{patient}, {patient2}] ELSE '{{}}' END, \
                    (CASE WHEN r2 < 950 THEN 'success' WHEN r2 < 990 THEN 'denied' ELSE 'error' END)::audit_outcome, \
                    r >= 998, false, CASE WHEN r >= 998 THEN 'bench' END, \
                    sha256(int8send(i)), sha256(int8send(i)) \
             FROM (SELECT i, abs(hashint8(i + 7)::int8) % 1000 AS r, abs(hashint8(i + 13)::int8) % 1000 AS r2 \
                   FROM generate_series($2::int8, $5::int8 - 1) i) g",
            patient2 = sql_id("patient", "(abs(hashint8(i)::int8) + 1) % 10000"),
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org)
            .bind(lo)
            .bind(n)
            .bind(Utc::now())
            .bind(hi)
            .execute(&mut *conn)
            .await
            .unwrap();
        lo = hi;
        eprint!("\r  audit_log rows for {org}: {lo}   ");
    }
    eprintln!();
}

async fn uuid_of(pool: &sqlx::PgPool, kind: &str, n: u64) -> Uuid {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {}", sql_id(kind, &n.to_string()))))
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn run(n: u64, queries: usize) {
    println!("console_events: ledger of {n} events (+ {} in another ledger), {queries} pages per filter", n / 10);
    let db = BenchDb::new(4).await;
    let org = db.org().await;
    let other: Uuid = sqlx::query_scalar("INSERT INTO organizations (name) VALUES ('Other Clinic') RETURNING id")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let t = Instant::now();
    load(&db.pool, org, n as i64).await;
    load(&db.pool, other, (n / 10) as i64).await;
    sqlx::query("ANALYZE audit_log").execute(&db.pool).await.unwrap();
    let size: String = sqlx::query_scalar("SELECT pg_size_pretty(pg_total_relation_size('audit_log'))")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    println!("  loaded in {:.0} s; audit_log with indexes: {size}", t.elapsed().as_secs_f64());

    let claims = Claims {
        user_id: Some(Uuid::new_v4()),
        org_id: Some(org),
        role: ClaimRole::Auditor,
        request_id: None,
        patient_scope: None,
    };
    let mut rng = rand::rng();
    let mut patients = Vec::new();
    let mut actors = Vec::new();
    for _ in 0..20 {
        patients.push(uuid_of(&db.pool, "patient", rng.random_range(0..10_000)).await);
        actors.push(uuid_of(&db.pool, "actor", rng.random_range(0..500)).await);
    }
    let now = Utc::now();
    let span = Duration::seconds(30 * n as i64);
    type MakeFilter = Box<dyn Fn(&mut rand::rngs::ThreadRng) -> EventFilter>;
    let base = EventFilter { limit: PAGE, ..Default::default() };
    let (pa, ac) = (patients.clone(), actors.clone());
    let filters: Vec<(&str, MakeFilter)> = vec![
        (
            "no filter",
            Box::new({
                let b = base.clone();
                move |_| b.clone()
            }),
        ),
        (
            "patient",
            Box::new({
                let b = base.clone();
                move |r| EventFilter { patient: Some(pa[r.random_range(0..pa.len())]), ..b.clone() }
            }),
        ),
        (
            "actor",
            Box::new({
                let b = base.clone();
                move |r| EventFilter { actor: Some(ac[r.random_range(0..ac.len())]), ..b.clone() }
            }),
        ),
        (
            "action=read (70 %)",
            Box::new({
                let b = base.clone();
                move |_| EventFilter { action: Some(Action::Read), ..b.clone() }
            }),
        ),
        (
            "action=export (0.1 %)",
            Box::new({
                let b = base.clone();
                move |_| EventFilter { action: Some(Action::Export), ..b.clone() }
            }),
        ),
        (
            "outcome=denied (4 %)",
            Box::new({
                let b = base.clone();
                move |_| EventFilter { outcome: Some(Outcome::Denied), ..b.clone() }
            }),
        ),
        (
            "time range: 1 hour",
            Box::new({
                let b = base.clone();
                move |r| {
                    let from = now - span + Duration::seconds(r.random_range(0..span.num_seconds()));
                    EventFilter { from: Some(from), to: Some(from + Duration::hours(1)), ..b.clone() }
                }
            }),
        ),
        (
            "time range: 30 days",
            Box::new({
                let b = base.clone();
                move |r| {
                    let from = now - span + Duration::seconds(r.random_range(0..span.num_seconds()));
                    EventFilter { from: Some(from), to: Some(from + Duration::days(30)), ..b.clone() }
                }
            }),
        ),
        (
            "break-glass only (0.2 %)",
            Box::new({
                let b = base.clone();
                move |_| EventFilter { break_glass: Some(true), ..b.clone() }
            }),
        ),
        (
            "patient + outcome=denied",
            Box::new({
                let b = base.clone();
                let pa = patients.clone();
                move |r| EventFilter {
                    patient: Some(pa[r.random_range(0..pa.len())]),
                    outcome: Some(Outcome::Denied),
                    ..b.clone()
                }
            }),
        ),
    ];

    let mut baseline = Vec::with_capacity(queries);
    for _ in 0..queries {
        let seq = rng.random_range(0..n as i64);
        let t = Instant::now();
        let mut tx = custos::db::begin(&db.pool, &claims).await.unwrap();
        let _: Option<i64> = sqlx::query_scalar("SELECT seq FROM audit_log WHERE ledger_id = $1 AND seq = $2")
            .bind(org)
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        baseline.push(t.elapsed().as_secs_f64() * 1e3);
    }
    baseline.sort_by(|a, b| a.total_cmp(b));
    let base_p99 = percentile(&baseline, 0.99);
    println!(
        "  {:<34} p50 {:>7.2} ms  p99 {:>7.2} ms",
        "baseline: one event by primary key",
        percentile(&baseline, 0.5),
        base_p99
    );
    let mut worst: f64 = 0.0;
    for (name, make) in &filters {
        let mut times = Vec::with_capacity(queries);
        let mut rows = 0usize;
        for q in 0..queries {
            let f = make(&mut rng);
            // Every other page continues from a random cursor (a later page of the same filter).
            let before = (q % 2 == 1).then(|| {
                let seq = rng.random_range(0..n as i64);
                TimeCursor { occurred_at: now - Duration::seconds(30 * (n as i64 - seq)), seq }
            });
            let t = Instant::now();
            let mut tx = custos::db::begin(&db.pool, &claims).await.unwrap();
            let page = query::list_events_by_time(&mut tx, org, &f, before).await.unwrap();
            tx.commit().await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            rows += page.len();
            assert!(page.iter().all(|r| r.ledger_id == org), "another ledger's event");
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let p99 = percentile(&times, 0.99);
        worst = worst.max(p99);
        println!(
            "  {name:<34} p50 {:>7.2} ms  p99 {:>7.2} ms  (x{:.1} baseline p99)  {:.0} rows/page",
            percentile(&times, 0.5),
            p99,
            p99 / base_p99,
            rows as f64 / queries as f64
        );
    }
    println!("  worst p99 {worst:.2} ms (target < 100 ms)");
    if std::env::var_os("CUSTOS_BENCH_KEEP").is_some() {
        println!("  kept database {} (org {org}) for EXPLAIN; drop it when done", db.name);
    } else {
        db.drop().await;
    }
}
