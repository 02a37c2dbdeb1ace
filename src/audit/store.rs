//! Reading the ledger tables: the event columns every ledger query selects, their mapping to
//! the hashed [`CanonicalEvent`], the per-ledger state row, and the stored subtree hashes that
//! proofs are assembled from. Runtime queries with bound parameters only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::canonical::CanonicalEvent;
use super::merkle::{Hash, MerkleError, NodeId, TreeState};
use super::signing::SYSTEM_LEDGER;

/// The event columns, in [`EventFields`] order. `abbrev(inet)` is PostgreSQL's own text form
/// (no `/32` for a single host), stable across versions; enums are read as text.
pub const EVENT_COLUMNS: &str = "event_id, occurred_at, org_id, actor_id, actor_role, action::text AS action, \
    resource_type, resource_ids, patient_id, outcome::text AS outcome, request_id, \
    abbrev(client_ip) AS client_ip, user_agent, reason, break_glass, imported, correlation_id, patient_ids, \
    format_version";

/// One event as stored in `audit_inbox` or `audit_log` (without ledger position and hashes).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventFields {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub org_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_ids: Vec<String>,
    pub patient_id: Option<Uuid>,
    pub outcome: String,
    pub request_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub reason: Option<String>,
    pub break_glass: bool,
    pub imported: bool,
    /// Format version 2 on: the client's own request id.
    pub correlation_id: Option<String>,
    /// Format version 2 on: the patients of an access that reached several.
    pub patient_ids: Vec<Uuid>,
    /// The canonical form the event is hashed in (docs/ledger-format.md).
    pub format_version: i16,
}

impl EventFields {
    /// The ledger an event belongs to: its organization's, or the system ledger.
    pub fn ledger_id(&self) -> Uuid {
        self.org_id.unwrap_or(SYSTEM_LEDGER)
    }

    /// The hashed form of this event at `index` of `ledger_id`.
    pub fn canonical(&self, ledger_id: Uuid, index: u64) -> CanonicalEvent {
        CanonicalEvent {
            v: u32::try_from(self.format_version).unwrap_or(0),
            ledger_id,
            index,
            event_id: self.event_id,
            occurred_at: self.occurred_at,
            actor_id: self.actor_id,
            actor_role: self.actor_role.clone(),
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_ids: self.resource_ids.clone(),
            patient_id: self.patient_id,
            outcome: self.outcome.clone(),
            reason: self.reason.clone(),
            request_id: self.request_id,
            correlation_id: self.correlation_id.clone(),
            patient_ids: self.patient_ids.clone(),
            client_ip: self.client_ip.clone(),
            user_agent: self.user_agent.clone(),
            break_glass: self.break_glass,
            imported: self.imported,
        }
    }
}

/// A row of `audit_log`: the event plus its place and hashes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogRow {
    pub ledger_id: Uuid,
    pub seq: i64,
    #[sqlx(flatten)]
    pub event: EventFields,
    pub leaf_hash: Vec<u8>,
    pub chain_hash: Vec<u8>,
}

/// `SELECT` list for [`LogRow`].
pub fn log_columns() -> String {
    format!("ledger_id, seq, {EVENT_COLUMNS}, leaf_hash, chain_hash")
}

/// The sequencer's row of one ledger.
#[derive(Debug, Clone)]
pub struct LedgerState {
    pub ledger_id: Uuid,
    pub chain_head: Hash,
    pub tree: TreeState,
    pub checkpoint_size: u64,
}

impl LedgerState {
    pub fn empty(ledger_id: Uuid) -> Self {
        Self { ledger_id, chain_head: super::merkle::CHAIN_SEED, tree: TreeState::new(), checkpoint_size: 0 }
    }
}

/// Problems with stored ledger data that are not database errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("ledger {ledger_id}: {problem}")]
    Corrupt { ledger_id: Uuid, problem: String },
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

pub fn to_hash(ledger_id: Uuid, bytes: &[u8]) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt { ledger_id, problem: "a stored hash is not 32 bytes".into() })
}

type StateRow = (Uuid, i64, Vec<u8>, Vec<u8>, i64);

fn state_from_row((ledger_id, size, chain, tree, cp): StateRow) -> Result<LedgerState, StoreError> {
    let corrupt = |problem: &str| StoreError::Corrupt { ledger_id, problem: problem.to_owned() };
    let tree = TreeState::from_bytes(&tree).map_err(|e| corrupt(&e.to_string()))?;
    if i64::try_from(tree.size()).ok() != Some(size) {
        return Err(corrupt("tree state size differs from the size column"));
    }
    Ok(LedgerState {
        ledger_id,
        chain_head: to_hash(ledger_id, &chain)?,
        tree,
        checkpoint_size: u64::try_from(cp).map_err(|_| corrupt("negative checkpoint size"))?,
    })
}

/// Ledger states for `ids` (missing ledgers are absent from the map); `lock` takes row locks.
pub async fn load_states(
    conn: &mut PgConnection,
    ids: &[Uuid],
    lock: bool,
) -> Result<HashMap<Uuid, LedgerState>, StoreError> {
    let sql = if lock {
        "SELECT ledger_id, size, chain_head, tree_state, checkpoint_size FROM audit_ledgers \
         WHERE ledger_id = ANY($1) ORDER BY ledger_id FOR UPDATE"
    } else {
        "SELECT ledger_id, size, chain_head, tree_state, checkpoint_size FROM audit_ledgers WHERE ledger_id = ANY($1)"
    };
    let rows: Vec<StateRow> = sqlx::query_as(sql).bind(ids).fetch_all(&mut *conn).await?;
    rows.into_iter().map(|r| state_from_row(r).map(|s| (s.ledger_id, s))).collect()
}

/// Every ledger's state.
pub async fn all_states(conn: &mut PgConnection) -> Result<Vec<LedgerState>, StoreError> {
    let rows: Vec<StateRow> = sqlx::query_as(
        "SELECT ledger_id, size, chain_head, tree_state, checkpoint_size FROM audit_ledgers ORDER BY ledger_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(state_from_row).collect()
}

/// Fetches the stored hashes of `ids` (leaves from `audit_log`, the rest from
/// `audit_tree_nodes`) in two indexed queries.
pub async fn fetch_nodes(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    let seqs: Vec<i64> = ids.iter().filter(|n| n.level == 0).map(|n| n.index as i64).collect();
    let (levels, idxs): (Vec<i16>, Vec<i64>) =
        ids.iter().filter(|n| n.level > 0).map(|n| (i16::from(n.level), n.index as i64)).unzip();
    if !seqs.is_empty() {
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, leaf_hash FROM audit_log WHERE ledger_id = $1 AND seq = ANY($2)")
                .bind(ledger_id)
                .bind(&seqs)
                .fetch_all(&mut *conn)
                .await?;
        for (seq, hash) in rows {
            out.insert(NodeId::new(0, seq as u64), to_hash(ledger_id, &hash)?);
        }
    }
    if !levels.is_empty() {
        let rows: Vec<(i16, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT n.level, n.idx, n.hash FROM audit_tree_nodes n \
             JOIN unnest($2::int2[], $3::int8[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx \
             WHERE n.ledger_id = $1",
        )
        .bind(ledger_id)
        .bind(&levels)
        .bind(&idxs)
        .fetch_all(&mut *conn)
        .await?;
        for (level, idx, hash) in rows {
            out.insert(NodeId::new(level as u8, idx as u64), to_hash(ledger_id, &hash)?);
        }
    }
    Ok(out)
}
