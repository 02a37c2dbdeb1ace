//! The audit sequencer: exactly one leader per database moves `audit_inbox` into the ledger.
//!
//! Leadership is a session-level `pg_try_advisory_lock` held by a dedicated connection, and
//! every batch runs on that same connection. If the connection drops, PostgreSQL releases the
//! lock *and* rolls back the open batch together, so a new leader can never race a batch of a
//! lost one. Every `custos serve` runs a candidate; `custos sequencer` runs one on its own.

pub use crate::metrics::{EVENTS_INTEGRATED, INBOX_DEPTH, IS_LEADER_GAUGE, LAG_SECONDS};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::batch::{BatchOutcome, run_batch};
use super::checkpointer::Checkpointer;
use super::signing::LedgerSigner;
use super::store::StoreError;
use super::witnessing::{self, WitnessTarget, Witnessing};
use crate::config::LedgerSettings;

/// Advisory lock key of the sequencer leader (arbitrary constant, per database).
pub const LEADER_LOCK: i64 = 0x0C05_7050_5E90;

static IS_LEADER: AtomicBool = AtomicBool::new(false);
static LAST_BATCH_UNIX_MS: AtomicI64 = AtomicI64::new(0);

/// Whether this process currently leads, and when its last batch ran (for /readyz).
pub fn local_status() -> (bool, Option<chrono::DateTime<chrono::Utc>>) {
    let ms = LAST_BATCH_UNIX_MS.load(Ordering::Relaxed);
    (IS_LEADER.load(Ordering::Relaxed), (ms > 0).then(|| chrono::DateTime::from_timestamp_millis(ms)).flatten())
}

/// A connection holding the leader lock.
pub struct Leader {
    conn: PgConnection,
}

impl Leader {
    /// Connects and tries the lock once; `None` when another process leads.
    pub async fn try_acquire(opts: &PgConnectOptions) -> Result<Option<Self>, sqlx::Error> {
        Ok(crate::db::try_lead(opts, "custos-sequencer", LEADER_LOCK).await?.map(|conn| Self { conn }))
    }

    /// The leader's connection (tests drive batches on it directly).
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Runs batches and checkpoints until a database error; never returns `Ok`.
    pub async fn run(&mut self, signer: &LedgerSigner, cfg: &LedgerSettings) -> Result<(), StoreError> {
        let mut cp = Checkpointer::new(signer.clone(), cfg.checkpoint_mirror.clone(), cfg.checkpoint_interval);
        loop {
            let started = Instant::now();
            let out = run_batch(&mut self.conn, cfg.batch_size).await?;
            observe(&out);
            cp.run_pass(&mut self.conn, false).await?;
            if out.integrated < cfg.batch_size as usize {
                let spent = started.elapsed();
                tokio::time::sleep(cfg.batch_interval.saturating_sub(spent)).await;
            }
        }
    }

    /// Integrates everything in the inbox and signs every ledger now (tests, `--once`).
    pub async fn drain(&mut self, signer: &LedgerSigner, cfg: &LedgerSettings) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let out = run_batch(&mut self.conn, cfg.batch_size).await?;
            observe(&out);
            total += out.integrated;
            if out.integrated == 0 {
                break;
            }
        }
        Checkpointer::new(signer.clone(), cfg.checkpoint_mirror.clone(), cfg.checkpoint_interval)
            .run_pass(&mut self.conn, true)
            .await?;
        let mut witnessing = Witnessing::new(witness_targets(cfg));
        if !witnessing.is_empty()
            && let Err(e) = witnessing.run_pass(&mut self.conn, true).await
        {
            tracing::warn!(error = %e, "witnessing pass failed");
        }
        Ok(total)
    }

    pub async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(LEADER_LOCK).execute(&mut self.conn).await;
        self.conn.close().await.ok();
    }
}

/// The configured witnesses; a bad key is logged and that witness left out (the settings
/// already checked the shape of `CUSTOS_WITNESSES`).
fn witness_targets(cfg: &LedgerSettings) -> Vec<WitnessTarget> {
    cfg.witnesses
        .iter()
        .filter_map(|w| match witnessing::parse_targets(std::slice::from_ref(w)) {
            Ok(mut t) => t.pop(),
            Err(e) => {
                tracing::error!(error = %e, "witness left out");
                None
            }
        })
        .collect()
}

fn observe(out: &BatchOutcome) {
    LAST_BATCH_UNIX_MS.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    if out.integrated > 0 {
        metrics::counter!(EVENTS_INTEGRATED).increment(out.integrated as u64);
        if let Some(oldest) = out.oldest {
            let lag = (chrono::Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::gauge!(LAG_SECONDS).set(lag);
        }
    } else {
        metrics::gauge!(LAG_SECONDS).set(0.0);
    }
}

/// Runs a candidate forever: become leader when possible, lead until the connection fails,
/// then try again. Errors are logged (no event content is ever in them).
pub async fn run_candidate(opts: PgConnectOptions, signer: LedgerSigner, cfg: LedgerSettings) {
    const RETRY: Duration = Duration::from_secs(2);
    loop {
        match Leader::try_acquire(&opts).await {
            Ok(Some(mut leader)) => {
                IS_LEADER.store(true, Ordering::Relaxed);
                metrics::gauge!(IS_LEADER_GAUGE).set(1.0);
                tracing::info!("audit sequencer: leader");
                // Witnesses are asked on a task and connection of their own: a slow or absent
                // witness never holds up the ledger.
                let witnessing = Witnessing::new(witness_targets(&cfg));
                let witness_task = (!witnessing.is_empty())
                    .then(|| tokio::spawn(witnessing::run(opts.clone(), witnessing, cfg.checkpoint_interval)));
                let res = leader.run(&signer, &cfg).await;
                if let Some(t) = witness_task {
                    t.abort();
                }
                IS_LEADER.store(false, Ordering::Relaxed);
                metrics::gauge!(IS_LEADER_GAUGE).set(0.0);
                if let Err(e) = res {
                    tracing::error!(error = %e, "audit sequencer stopped leading");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit sequencer: cannot connect"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Inbox depth and the age of its oldest live event, read as the sequencer role.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerHealth {
    pub inbox_depth: i64,
    pub lag_seconds: f64,
    /// Tree size of the most recently signed checkpoint (any ledger).
    pub last_checkpoint_size: Option<i64>,
    pub last_checkpoint_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Integrated entries not yet covered by a signed checkpoint, all ledgers.
    pub unsigned_entries: i64,
    pub leader_here: bool,
    pub last_batch_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn health(conn: &mut PgConnection) -> Result<LedgerHealth, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL ROLE custos_sequencer").execute(&mut *tx).await?;
    let (depth, lag): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), extract(epoch FROM now() - min(occurred_at) FILTER (WHERE NOT imported))::float8 \
         FROM audit_inbox",
    )
    .fetch_one(&mut *tx)
    .await?;
    let unsigned: i64 = sqlx::query_scalar("SELECT coalesce(sum(size - checkpoint_size), 0)::int8 FROM audit_ledgers")
        .fetch_one(&mut *tx)
        .await?;
    let last: Option<(i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT tree_size, created_at FROM audit_checkpoints ORDER BY created_at DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    tx.rollback().await?;
    let lag = lag.unwrap_or(0.0).max(0.0);
    metrics::gauge!(INBOX_DEPTH).set(depth as f64);
    let (leader_here, last_batch_at) = local_status();
    Ok(LedgerHealth {
        inbox_depth: depth,
        lag_seconds: lag,
        last_checkpoint_size: last.map(|l| l.0),
        last_checkpoint_at: last.map(|l| l.1),
        unsigned_entries: unsigned,
        leader_here,
        last_batch_at,
    })
}
