//! Reading the ledger tables: the event columns every ledger query selects, the one struct an
//! event is read into ([`EventFields`]: stored row, hashed form through the borrowed
//! [`CanonicalEvent`] view, API and NDJSON item through [`LogRow`]), the per-ledger state row,
//! and the stored subtree hashes that proofs are assembled from. Runtime queries with bound
//! parameters only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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

/// One event as stored in `audit_inbox` or `audit_log` (without ledger position and hashes):
/// the one event struct. The same fields are hashed ([`EventFields::canonical`]), listed and
/// exported ([`LogRow`], serialized), and parsed back from canonical bytes
/// ([`super::canonical::ParsedEvent`], where the version is named `v`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventFields {
    pub event_id: Uuid,
    /// RFC 3339 UTC with microseconds.
    #[serde(serialize_with = "occurred_at_text", deserialize_with = "super::canonical::micros::deserialize")]
    #[schema(value_type = String)]
    pub occurred_at: DateTime<Utc>,
    /// Not a member of the hashed form (the ledger id is); never serialized.
    #[serde(skip)]
    pub org_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_ids: Vec<String>,
    pub patient_id: Option<Uuid>,
    /// success, denied, error.
    pub outcome: String,
    /// The server's id of the request.
    pub request_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Break-glass justification or failure reason; never clinical content.
    pub reason: Option<String>,
    pub break_glass: bool,
    /// Legacy activity brought in by `custos import`, with its original timestamp.
    pub imported: bool,
    /// Format version 2 on: the client's own id of the request (`X-Request-Id`), for
    /// correlation only.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Format version 2 on: every patient an access that reached several returned or changed
    /// (a list read, an export); empty otherwise and in format-version-1 entries.
    #[serde(default)]
    pub patient_ids: Vec<Uuid>,
    /// The canonical form the entry was hashed in (docs/ledger-format.md); `v` in that form.
    #[serde(alias = "v")]
    pub format_version: i16,
}

/// `occurred_at` as the canonical form writes it (RFC 3339 UTC, 6 fractional digits, `Z`);
/// an instant that form cannot hold (never stored) falls back to chrono's RFC 3339.
fn occurred_at_text<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::canonical::format_timestamp(t).unwrap_or_else(|_| t.to_rfc3339()))
}

/// A hash as the API and exports show it: standard base64.
fn base64_text<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

impl EventFields {
    /// The ledger an event belongs to: its organization's, or the system ledger.
    pub fn ledger_id(&self) -> Uuid {
        self.org_id.unwrap_or(SYSTEM_LEDGER)
    }

    /// The hashed form of this event at `index` of `ledger_id` (a view: nothing is copied).
    pub fn canonical(&self, ledger_id: Uuid, index: u64) -> CanonicalEvent<'_> {
        CanonicalEvent { ledger_id, index, event: self }
    }
}

/// A row of `audit_log`: the event plus its place and hashes. Serialized, it is the API's and
/// the NDJSON export's ledger entry (`LedgerEvent` in the OpenAPI document; CSV has the same
/// columns, a unit test holds them to `formats::CSV_HEADER`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = LedgerEvent)]
pub struct LogRow {
    pub ledger_id: Uuid,
    /// 0-based leaf index in the ledger.
    #[schema(minimum = 0)]
    pub seq: i64,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub event: EventFields,
    /// `SHA-256(0x00 ‖ canonical event bytes)`, base64.
    #[serde(serialize_with = "base64_text")]
    #[schema(value_type = String)]
    pub leaf_hash: Vec<u8>,
    /// `SHA-256(chain_{seq-1} ‖ leaf_hash)`, base64.
    #[serde(serialize_with = "base64_text")]
    #[schema(value_type = String)]
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
