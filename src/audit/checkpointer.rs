//! Signing checkpoints: every ledger that grew past its last signed size gets a new signed
//! note once per interval, stored in `audit_checkpoints` (append-only) in the same
//! transaction that records the new signed size, then copied to the mirror directory if one
//! is configured — a copy outside the database, which is what catches a superuser rewrite.

pub use crate::metrics::{CHECKPOINTS_SIGNED, LAST_CHECKPOINT_SIZE, MIRROR_FAILURES};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::signing::LedgerSigner;
use super::store::{self, StoreError};

/// A checkpoint that was just signed and stored.
#[derive(Debug, Clone)]
pub struct Signed {
    pub ledger_id: Uuid,
    pub size: u64,
    pub note: String,
}

pub struct Checkpointer {
    signer: LedgerSigner,
    mirror: Option<PathBuf>,
    interval: Duration,
    last: HashMap<Uuid, Instant>,
}

impl Checkpointer {
    pub fn new(signer: LedgerSigner, mirror: Option<PathBuf>, interval: Duration) -> Self {
        Self { signer, mirror, interval, last: HashMap::new() }
    }

    /// Signs every ledger with unsigned entries whose last checkpoint is at least one
    /// interval old (`force`: regardless of age). `conn` must not be in a transaction.
    pub async fn run_pass(&mut self, conn: &mut PgConnection, force: bool) -> Result<Vec<Signed>, StoreError> {
        let mut tx = conn.begin().await?;
        sqlx::query("SET LOCAL ROLE custos_sequencer").execute(&mut *tx).await?;
        let pending: Vec<Uuid> =
            sqlx::query_scalar("SELECT ledger_id FROM audit_ledgers WHERE size > checkpoint_size ORDER BY ledger_id")
                .fetch_all(&mut *tx)
                .await?;
        let now = Instant::now();
        let due: Vec<Uuid> = pending
            .into_iter()
            .filter(|id| force || self.last.get(id).is_none_or(|t| now.duration_since(*t) >= self.interval))
            .collect();
        if due.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let states = store::load_states(&mut tx, &due, true).await?;
        let mut signed = Vec::with_capacity(due.len());
        for id in &due {
            let Some(state) = states.get(id) else { continue };
            let (size, root) = (state.tree.size(), state.tree.root());
            let note = self
                .signer
                .sign(*id, size, root)
                .map_err(|e| StoreError::Corrupt { ledger_id: *id, problem: e.to_string() })?;
            sqlx::query(
                "INSERT INTO audit_checkpoints (ledger_id, tree_size, root_hash, signed_note, created_at) \
                 VALUES ($1, $2, $3, $4, clock_timestamp())",
            )
            .bind(id)
            .bind(size as i64)
            .bind(&root[..])
            .bind(&note)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE audit_ledgers SET checkpoint_size = $2 WHERE ledger_id = $1")
                .bind(id)
                .bind(size as i64)
                .execute(&mut *tx)
                .await?;
            signed.push(Signed { ledger_id: *id, size, note });
        }
        tx.commit().await?;
        for s in &signed {
            self.last.insert(s.ledger_id, now);
            crate::metrics::record_checkpoint(s.ledger_id, s.size);
            if let Some(dir) = &self.mirror
                && let Err(e) = write_mirror(dir, s).await
            {
                // The database copy is committed; a missing mirror copy is loud but not fatal.
                metrics::counter!(MIRROR_FAILURES).increment(1);
                tracing::error!(ledger = %s.ledger_id, size = s.size, error = %e, "cannot mirror checkpoint");
            }
        }
        Ok(signed)
    }
}

/// `<dir>/<ledger id>/<size>.checkpoint` for every checkpoint, and `latest.checkpoint`
/// (replaced atomically by rename).
async fn write_mirror(dir: &Path, s: &Signed) -> std::io::Result<()> {
    let ledger_dir = dir.join(s.ledger_id.to_string());
    tokio::fs::create_dir_all(&ledger_dir).await?;
    tokio::fs::write(ledger_dir.join(format!("{}.checkpoint", s.size)), &s.note).await?;
    let tmp = ledger_dir.join(".latest.tmp");
    tokio::fs::write(&tmp, &s.note).await?;
    tokio::fs::rename(&tmp, ledger_dir.join("latest.checkpoint")).await
}
