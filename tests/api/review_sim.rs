//! The scenario test of every detector: `custos demo simulate` into a fresh database, the
//! engine over its ledger — interrupted several times mid-batch, as by a crash — and the
//! alerts scored against the injected, labelled cases. Then the same ledger analyzed again
//! from scratch in one go must give exactly the same alerts (no alert lost or raised twice).

use std::time::Duration;

use custos::audit::sequencer::Leader as Sequencer;
use custos::audit::signing::LedgerSigner;
use custos::crypto::Kek;
use custos::demo::simulate::{self, Labels, Options};
use custos::keys::RootKeys;
use custos::monitoring::config::Thresholds;
use custos::monitoring::engine::Leader;
use sqlx::PgPool;

use crate::audit::ORIGIN;
use crate::common::TestDb;

type AlertRow = (String, uuid::Uuid, Option<uuid::Uuid>, String, i64, chrono::DateTime<chrono::Utc>);

async fn alert_rows(pool: &PgPool) -> Vec<AlertRow> {
    sqlx::query_as(
        "SELECT detector, actor_id, patient_id, bucket, event_count, first_seen FROM monitor_alerts \
         ORDER BY detector, actor_id, patient_id, bucket",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn lead(pool: &PgPool) -> Leader {
    for _ in 0..100 {
        if let Some(l) = Leader::try_acquire(&pool.connect_options()).await.unwrap() {
            return l;
        }
        // An aborted leader's backend is still ending.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("monitor lock never released");
}

#[tokio::test]
async fn every_injected_case_is_found_precisely_and_a_crash_changes_nothing() {
    let db = TestDb::new().await;
    let keys = RootKeys::random();
    let out = std::env::temp_dir().join(format!("custos-sim-{}", uuid::Uuid::new_v4().simple()));
    let opts = Options { seed: 7, weeks: 4, clinicians: 48, out: out.clone() };
    let sim = simulate::run(&db.pool, &keys, &opts).await.unwrap();
    let signer = LedgerSigner::new(ORIGIN, &keys).unwrap();
    let cfg = db.settings(&[("CUSTOS_LEDGER_ORIGIN", ORIGIN)]).ledger;
    let mut seq = Sequencer::try_acquire(&db.pool.connect_options()).await.unwrap().unwrap();
    assert_eq!(seq.drain(&signer, &cfg).await.unwrap() as u64, sim.events + 2, "+ the two bootstrap events");
    seq.release().await;
    let labels: Labels = serde_json::from_slice(&std::fs::read(out.join("labels.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&out).ok();
    assert_eq!(labels.cases.len(), 33, "three cases for each of the eleven detectors");

    let crypto = custos::crypto::store::load(&db.pool, &Kek::from_bytes(*keys.kek.expose())).await.unwrap();
    let crypto = std::sync::Arc::new(crypto);
    let small = Thresholds { batch_size: 997, ..Thresholds::default() };
    // Crashes: a pass dropped mid-flight (its connection closes, its batch rolls back).
    for ms in [150u64, 400, 900] {
        let (pool, crypto, th) = (db.pool.clone(), crypto.clone(), small.clone());
        let task = tokio::spawn(async move {
            let mut l = lead(&pool).await;
            l.run_pass(&crypto, &th).await
        });
        tokio::time::sleep(Duration::from_millis(ms)).await;
        task.abort();
        let _ = task.await;
    }
    let mut l = lead(&db.pool).await;
    l.run_pass(&crypto, &small).await.unwrap();
    l.release().await;
    let interrupted = alert_rows(&db.pool).await;

    let eval = simulate::evaluate(&db.pool, &labels).await.unwrap();
    for (code, s) in &eval.detectors {
        assert_eq!(s.labels, 3, "{code}");
        assert_eq!(s.found, 3, "{code}: every injected case is found ({s:?})");
        assert!(s.precision() >= 0.9, "{code}: precision {:.2} ({s:?})", s.precision());
    }
    assert!(eval.explained_share() >= 0.9, "explained share {:.3}", eval.explained_share());
    assert_eq!(
        eval.explained_and_flagged, 4,
        "the namesake on the care team and the three break-glass cases are explained and flagged"
    );

    // From scratch, in one go: the same alerts.
    sqlx::query(
        "TRUNCATE monitor_alert_events, monitor_decisions, monitor_alerts, monitor_explanations, monitor_daily_stats, \
         monitor_user_state, monitor_watermarks, monitor_patient_keys",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let mut l = lead(&db.pool).await;
    let r = l.run_pass(&crypto, &Thresholds::default()).await.unwrap();
    l.release().await;
    assert_eq!(r.entries, sim.events + 2, "+ the two bootstrap events");
    assert_eq!(alert_rows(&db.pool).await, interrupted);
    let again = simulate::evaluate(&db.pool, &labels).await.unwrap();
    assert_eq!((again.accesses, again.explained), (eval.accesses, eval.explained));
}
