//! Sequencer throughput with concurrent writers, and commit → signed checkpoint latency.
//! Baseline: the same writers filling the inbox with no sequencer running.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use custos::audit::sequencer::Leader;
use custos::audit::signing::LedgerSigner;
use custos::audit::{Action, AuditContext, AuditEvent, Outcome};
use custos::db::Claims;
use custos::keys::RootKeys;
use uuid::Uuid;

use crate::common::{BenchDb, percentile};

/// Writers insert one event per transaction (one audited request each) until `total` are
/// written; returns (seconds, sampled (event id, commit time)).
async fn write(db: &BenchDb, org: Uuid, total: u64, writers: usize) -> (f64, Vec<(Uuid, DateTime<Utc>)>) {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (pool, next) = (db.pool.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let claims = Claims::system(Some(org));
            let ctx =
                AuditContext { client_ip: Some("10.0.0.7".parse().unwrap()), ..AuditContext::from_claims(&claims) };
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let ev = AuditEvent::new(Action::Read, "patient", Outcome::Success)
                    .resource(Uuid::new_v4())
                    .patient(Uuid::new_v4());
                let mut tx = custos::db::begin(&pool, &claims).await.unwrap();
                let id = custos::audit::record(&mut tx, &ctx, &ev).await.unwrap();
                tx.commit().await.unwrap();
                if i % 16 == 0 {
                    samples.push((id, Utc::now()));
                }
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.unwrap());
    }
    (started.elapsed().as_secs_f64(), samples)
}

pub async fn run(total: u64, writers: usize) {
    println!("sequencer: {total} events, {writers} writers (one event per transaction)");
    // Baseline: inbox inserts alone.
    let base = BenchDb::new(writers as u32 + 4).await;
    let org = base.org().await;
    let (secs, _) = write(&base, org, total, writers).await;
    println!("  baseline  inbox inserts only:      {:>9.0} events/s", total as f64 / secs);
    base.drop().await;

    let db = BenchDb::new(writers as u32 + 4).await;
    let org = db.org().await;
    let settings = custos::config::Settings::from_lookup(|_| None).unwrap();
    let cfg = settings.ledger.clone();
    let signer = LedgerSigner::new(&cfg.origin, &RootKeys::random()).unwrap();
    let opts = db.pool.connect_options();
    let mut leader = Leader::try_acquire(&opts).await.unwrap().unwrap();
    let (s2, c2) = (signer.clone(), cfg.clone());
    let seq = tokio::spawn(async move {
        let _ = leader.run(&s2, &c2).await;
    });
    let started = Instant::now();
    let (write_secs, samples) = write(&db, org, total, writers).await;
    // Wait until everything is integrated and signed.
    loop {
        let cp: Option<i64> = sqlx::query_scalar("SELECT checkpoint_size FROM audit_ledgers WHERE ledger_id = $1")
            .bind(org)
            .fetch_optional(&db.pool)
            .await
            .unwrap();
        if cp == Some(total as i64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_secs = started.elapsed().as_secs_f64();
    seq.abort();
    let ids: Vec<Uuid> = samples.iter().map(|s| s.0).collect();
    let signed_at: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT l.event_id, (SELECT c.created_at FROM audit_checkpoints c WHERE c.ledger_id = l.ledger_id \
           AND c.tree_size > l.seq ORDER BY c.tree_size LIMIT 1) \
         FROM audit_log l WHERE l.event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let signed: std::collections::HashMap<Uuid, DateTime<Utc>> = signed_at.into_iter().collect();
    let mut lat: Vec<f64> = samples
        .iter()
        .filter_map(|(id, committed)| {
            signed.get(id).map(|s| (*s - *committed).num_microseconds().unwrap_or(0) as f64 / 1e6)
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!("  writers with sequencer running:    {:>9.0} events/s written", total as f64 / write_secs);
    println!("  integrated and signed (end to end):{:>9.0} events/s ({all_secs:.2} s)", total as f64 / all_secs);
    println!(
        "  commit -> signed checkpoint: p50 {:.3} s, p99 {:.3} s, max {:.3} s ({} samples)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        lat.len()
    );
    let cps: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_checkpoints").fetch_one(&db.pool).await.unwrap();
    println!("  checkpoints signed: {cps}");
    db.drop().await;
    capacity(total, &signer, &cfg).await;
}

/// The sequencer's own ceiling: drain an inbox pre-filled in bulk (no writer contention).
async fn capacity(total: u64, signer: &LedgerSigner, cfg: &custos::config::LedgerSettings) {
    let db = BenchDb::new(4).await;
    let org = db.org().await;
    sqlx::query(
        "INSERT INTO audit_inbox (org_id, actor_role, action, resource_type, resource_ids, patient_id, outcome, \
         client_ip, user_agent) SELECT $1, 'clinician', 'read', 'patient', ARRAY[gen_random_uuid()::text], \
         gen_random_uuid(), 'success', '10.0.0.7', 'bench' FROM generate_series(1, $2::int8)",
    )
    .bind(org)
    .bind(total as i64)
    .execute(&db.pool)
    .await
    .unwrap();
    let mut leader = Leader::try_acquire(&db.pool.connect_options()).await.unwrap().unwrap();
    let t = Instant::now();
    let n = leader.drain(signer, cfg).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(n as u64, total);
    println!(
        "  sequencer capacity (pre-filled inbox, batches of {}): {:>9.0} events/s ({secs:.2} s)",
        cfg.batch_size,
        total as f64 / secs
    );
    leader.release().await;
    db.drop().await;
}
