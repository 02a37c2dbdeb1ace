//! The sequencer moves every inbox event into the log exactly once, with contiguous indices
//! per ledger, whatever the concurrency and wherever it is interrupted.

use std::time::Duration;

use custos::audit::canonical::CanonicalEvent;
use custos::audit::checkpoint::open_checkpoint;
use custos::audit::merkle::{self, TreeState};
use custos::audit::sequencer::Leader;
use custos::audit::signing::{SYSTEM_LEDGER, ledger_verifiers};
use custos::audit::store::EventFields;
use sqlx::Connection;
use uuid::Uuid;

use crate::{World, log_shape, write_events};

#[tokio::test]
async fn integrates_per_ledger_with_hashes_that_recompute() {
    let w = World::new().await;
    write_events(&w.db.pool, Some(w.org_a), 30).await;
    write_events(&w.db.pool, Some(w.org_b), 5).await;
    write_events(&w.db.pool, None, 3).await;
    let mut conn = w.db.pool.acquire().await.unwrap();
    let before = custos::audit::sequencer::health(&mut conn).await.unwrap();
    assert_eq!((before.inbox_depth, before.last_checkpoint_size, before.unsigned_entries), (38, None, 0));
    assert!(before.lag_seconds >= 0.0);
    assert_eq!(w.drain().await, 38);
    let after = custos::audit::sequencer::health(&mut conn).await.unwrap();
    assert_eq!((after.inbox_depth, after.lag_seconds, after.unsigned_entries), (0, 0.0, 0));
    assert!(after.last_checkpoint_size.is_some());
    drop(conn);

    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_inbox").fetch_one(&w.db.pool).await.unwrap();
    assert_eq!(inbox, 0);
    for (ledger, n) in [(w.org_a, 30), (w.org_b, 5), (SYSTEM_LEDGER, 3)] {
        assert_eq!(log_shape(&w.db.pool, ledger).await, (n, Some(0), Some(n - 1), n), "{ledger}");
        // Leaves are the RFC 9162 hash of the canonical bytes; the chain follows; the signed
        // checkpoint commits to the root of exactly these leaves.
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT seq, leaf_hash, chain_hash FROM audit_log WHERE ledger_id = $1 ORDER BY seq")
                .bind(ledger)
                .fetch_all(&w.db.pool)
                .await
                .unwrap();
        let mut chain = merkle::CHAIN_SEED;
        let mut leaves = Vec::new();
        for (_, leaf, c) in &rows {
            let leaf: [u8; 32] = leaf.as_slice().try_into().unwrap();
            chain = merkle::chain_hash(&chain, &leaf);
            assert_eq!(c.as_slice(), &chain);
            leaves.push(leaf);
        }
        let note: String = sqlx::query_scalar(
            "SELECT signed_note FROM audit_checkpoints WHERE ledger_id = $1 ORDER BY tree_size DESC LIMIT 1",
        )
        .bind(ledger)
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
        // Signed under the ledger's origin as key name: the installation's key, so named.
        let keys = ledger_verifiers(&[w.signer.verifier()], &w.signer.origin_for(ledger));
        assert!(open_checkpoint(note.as_bytes(), &[w.signer.verifier()]).is_err());
        let cp = open_checkpoint(note.as_bytes(), &keys).unwrap();
        assert_eq!(cp.origin, w.signer.origin_for(ledger));
        assert_eq!(cp.size, n as u64);
        assert_eq!(cp.root, merkle::root_of(&leaves));
        let (state, root): (Vec<u8>, Vec<u8>) =
            sqlx::query_as("SELECT tree_state, root_hash FROM audit_ledgers WHERE ledger_id = $1")
                .bind(ledger)
                .fetch_one(&w.db.pool)
                .await
                .unwrap();
        assert_eq!(TreeState::from_bytes(&state).unwrap().root(), cp.root);
        assert_eq!(root.as_slice(), &cp.root);
    }
    // A leaf is the hash of exactly the canonical form of the stored event.
    let mut conn = w.db.pool.acquire().await.unwrap();
    let sql = format!("SELECT {} FROM audit_log WHERE ledger_id = $1 AND seq = 3", custos::audit::store::log_columns());
    let row: custos::audit::store::LogRow =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(w.org_a).fetch_one(&mut *conn).await.unwrap();
    let bytes = row.event.canonical(w.org_a, 3).canonical_bytes().unwrap();
    assert_eq!(row.leaf_hash, merkle::leaf_hash(&bytes).to_vec());
    let back = CanonicalEvent::from_canonical_bytes(&bytes).unwrap();
    assert_eq!((back.ledger_id, back.index), (w.org_a, 3));
    assert_eq!(back.event.client_ip.as_deref(), Some("10.1.2.3"));
    assert!(back.event.break_glass);
    assert_eq!(EventFields { org_id: None, ..row.event }, back.event);
    assert!(w.report(&[]).await.iter().all(|r| r.finding.is_none()));
}

#[tokio::test]
async fn only_one_leader_at_a_time() {
    let w = World::new().await;
    let first = w.leader().await;
    let opts = w.db.pool.connect_options();
    assert!(Leader::try_acquire(&opts).await.unwrap().is_none(), "a second leader while the first holds the lock");
    first.release().await;
    assert!(Leader::try_acquire(&opts).await.unwrap().is_some());
}

#[tokio::test]
async fn exactly_once_with_concurrent_writers_and_a_running_leader() {
    let w = World::new().await;
    let mut leader = w.leader().await;
    let (signer, cfg) = (w.signer.clone(), w.cfg.clone());
    let running = tokio::spawn(async move {
        let _ = leader.run(&signer, &cfg).await;
    });
    let mut writers = Vec::new();
    for i in 0..8 {
        let pool = w.db.pool.clone();
        let org = [Some(w.org_a), Some(w.org_b), None][i % 3];
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..10 {
                ids.extend(write_events(&pool, org, 7).await);
            }
            ids
        }));
    }
    let mut written = Vec::new();
    for h in writers {
        written.extend(h.await.unwrap());
    }
    wait_for_empty_inbox(&w).await;
    running.abort();
    let _ = running.await;
    assert_exactly_once(&w, &written).await;
}

#[tokio::test]
async fn crashes_mid_batch_lose_and_duplicate_nothing() {
    let w = World::new().await;
    let writer = {
        let pool = w.db.pool.clone();
        let (a, b) = (w.org_a, w.org_b);
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..60 {
                ids.extend(write_events(&pool, Some(if i % 2 == 0 { a } else { b }), 9).await);
            }
            ids
        })
    };
    // Leaders that die in every way we can cause: the task aborted at an arbitrary await
    // (connection dropped without goodbye), and the backend killed by the server.
    for round in 0..12 {
        let mut leader = w.leader().await;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(leader.conn()).await.unwrap();
        let (signer, cfg) = (w.signer.clone(), w.cfg.clone());
        let task = tokio::spawn(async move { leader.run(&signer, &cfg).await });
        tokio::time::sleep(Duration::from_millis(7 + 3 * round)).await;
        if round % 2 == 0 {
            task.abort();
            let _ = task.await;
        } else {
            sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&w.db.pool).await.unwrap();
            assert!(task.await.unwrap().is_err(), "the leader notices its connection is gone");
        }
        // The lock is released with the connection: a new leader can start at once.
        wait_for_lock_release(&w).await;
    }
    let written = writer.await.unwrap();
    w.drain().await;
    assert_exactly_once(&w, &written).await;
}

async fn wait_for_lock_release(w: &World) {
    for _ in 0..200 {
        if let Some(l) = Leader::try_acquire(&w.db.pool.connect_options()).await.unwrap() {
            l.release().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("leader lock never released");
}

async fn wait_for_empty_inbox(w: &World) {
    for _ in 0..500 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_inbox").fetch_one(&w.db.pool).await.unwrap();
        if n == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("inbox never drained");
}

async fn assert_exactly_once(w: &World, written: &[Uuid]) {
    let mut conn = w.db.pool.acquire().await.unwrap().detach();
    let logged: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM audit_log ORDER BY event_id").fetch_all(&mut conn).await.unwrap();
    let mut want = written.to_vec();
    want.sort();
    assert_eq!(logged.len(), want.len(), "every written event is logged once");
    assert_eq!(logged, want);
    for ledger in [w.org_a, w.org_b, SYSTEM_LEDGER] {
        let (n, min, max, distinct) = log_shape(&w.db.pool, ledger).await;
        if n > 0 {
            assert_eq!((min, max, distinct), (Some(0), Some(n - 1), n), "contiguous indices in {ledger}");
        }
    }
    let reports = w.report(&[]).await;
    for r in &reports {
        assert!(r.finding.is_none(), "{}: {:?}", r.ledger_id, r.finding);
        assert!(r.checkpoints > 0);
    }
    conn.close().await.ok();
}
