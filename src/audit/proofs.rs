//! Proofs and tree heads from the database: RFC 9162 inclusion and consistency proofs built
//! from the stored complete subtrees (O(log n) primary-key reads whatever the ledger size),
//! and the latest signed checkpoint. Every function runs on the caller's connection, so in a
//! request the RLS policies decide which ledgers are visible.

use sqlx::PgConnection;
use uuid::Uuid;

use super::merkle::{self, Hash, MerkleError};
use super::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// No such ledger (or not visible to the caller).
    #[error("ledger not found")]
    UnknownLedger,
    /// Index or size beyond what the ledger holds, or sizes in the wrong order.
    #[error("{0}")]
    OutOfRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ProofError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// `PATH(index, D[tree_size])` and the leaf it starts from.
#[derive(Debug, Clone)]
pub struct Inclusion {
    pub leaf_hash: Hash,
    pub proof: Vec<Hash>,
    pub root: Hash,
}

/// Current size of a visible ledger.
pub async fn ledger_size(conn: &mut PgConnection, ledger_id: Uuid) -> Result<u64, ProofError> {
    let size: Option<i64> = sqlx::query_scalar("SELECT size FROM audit_ledgers WHERE ledger_id = $1")
        .bind(ledger_id)
        .fetch_optional(&mut *conn)
        .await?;
    size.map(|s| s as u64).ok_or(ProofError::UnknownLedger)
}

fn range_err(e: MerkleError) -> ProofError {
    match e {
        MerkleError::IndexOutOfRange { .. } | MerkleError::SizeDecreased { .. } => {
            ProofError::OutOfRange(e.to_string())
        }
        other => ProofError::Store(other.into()),
    }
}

/// Inclusion proof of leaf `index` in the tree of `tree_size` leaves (≤ the ledger's size).
pub async fn inclusion(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    index: u64,
    tree_size: u64,
) -> Result<Inclusion, ProofError> {
    let size = ledger_size(conn, ledger_id).await?;
    if tree_size > size {
        return Err(ProofError::OutOfRange(format!("tree_size {tree_size} is beyond the ledger size {size}")));
    }
    let mut ids = merkle::inclusion_proof_nodes(index, tree_size).map_err(range_err)?;
    ids.push(merkle::NodeId::new(0, index));
    ids.extend(merkle::root_nodes(tree_size));
    let nodes = store::fetch_nodes(conn, ledger_id, &ids).await?;
    let proof = merkle::inclusion_proof(&nodes, index, tree_size).map_err(range_err)?;
    let root = merkle::root_from_source(&nodes, tree_size).map_err(range_err)?;
    let leaf_hash = *nodes
        .get(&merkle::NodeId::new(0, index))
        .ok_or(ProofError::Store(StoreError::Merkle(MerkleError::MissingNode(merkle::NodeId::new(0, index)))))?;
    Ok(Inclusion { leaf_hash, proof, root })
}

/// Consistency proof between tree sizes `from` ≤ `to` (≤ the ledger's size), with both roots.
pub async fn consistency(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    from: u64,
    to: u64,
) -> Result<(Vec<Hash>, Hash, Hash), ProofError> {
    let size = ledger_size(conn, ledger_id).await?;
    if to > size {
        return Err(ProofError::OutOfRange(format!("to {to} is beyond the ledger size {size}")));
    }
    let mut ids = merkle::consistency_proof_nodes(from, to).map_err(range_err)?;
    ids.extend(merkle::root_nodes(from));
    ids.extend(merkle::root_nodes(to));
    let nodes = store::fetch_nodes(conn, ledger_id, &ids).await?;
    let proof = merkle::consistency_proof(&nodes, from, to).map_err(range_err)?;
    let old = merkle::root_from_source(&nodes, from).map_err(range_err)?;
    let new = merkle::root_from_source(&nodes, to).map_err(range_err)?;
    Ok((proof, old, new))
}

/// The latest signed checkpoint note of a visible ledger, with its witnesses' cosignatures.
pub async fn latest_checkpoint(conn: &mut PgConnection, ledger_id: Uuid) -> Result<(u64, String), ProofError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT c.tree_size, c.signed_note || coalesce((SELECT string_agg(s.signature_line, '' ORDER BY s.witness) \
           FROM audit_cosignatures s WHERE s.ledger_id = c.ledger_id AND s.tree_size = c.tree_size), '') \
         FROM audit_checkpoints c WHERE c.ledger_id = $1 ORDER BY c.tree_size DESC LIMIT 1",
    )
    .bind(ledger_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(s, n)| (s as u64, n)).ok_or(ProofError::UnknownLedger)
}

/// The `c2sp.org/tlog-proof@v1` file of entry `index` against the ledger's latest checkpoint
/// (with its cosignatures); the entry's canonical bytes are the `extra` data.
pub async fn event_proof(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    index: u64,
) -> Result<super::tlog_proof::TlogProof, ProofError> {
    let (size, checkpoint) = latest_checkpoint(conn, ledger_id).await?;
    if index >= size {
        return Err(ProofError::OutOfRange(format!("index {index} is not covered by the latest checkpoint ({size})")));
    }
    let sql = format!("SELECT {} FROM audit_log WHERE ledger_id = $1 AND seq = $2", store::log_columns());
    let row: Option<store::LogRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(ledger_id).bind(index as i64).fetch_optional(&mut *conn).await?;
    let row = row.ok_or(ProofError::UnknownLedger)?;
    let corrupt = |problem: String| ProofError::Store(StoreError::Corrupt { ledger_id, problem });
    let mut extra = Vec::with_capacity(1024);
    row.event.canonical(ledger_id, index).write_canonical(&mut extra).map_err(|e| corrupt(e.to_string()))?;
    let inc = inclusion(conn, ledger_id, index, size).await?;
    if merkle::leaf_hash(&extra) != inc.leaf_hash {
        return Err(corrupt(format!("entry {index} does not hash to its stored leaf")));
    }
    Ok(super::tlog_proof::TlogProof { extra: Some(extra), index, proof: inc.proof, checkpoint })
}

/// One stored checkpoint of a ledger, as the console's history lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredCheckpoint {
    pub tree_size: i64,
    pub signed_note: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A visible ledger's checkpoints, largest first, `limit` of them below tree size `below`
/// (keyset on the primary key `(ledger_id, tree_size)`; `None`: from the latest).
pub async fn checkpoint_history(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    below: Option<u64>,
    limit: i64,
) -> Result<Vec<StoredCheckpoint>, ProofError> {
    let below = below.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
    Ok(sqlx::query_as(
        "SELECT tree_size, signed_note, created_at FROM audit_checkpoints \
         WHERE ledger_id = $1 AND tree_size < $2 ORDER BY tree_size DESC LIMIT $3",
    )
    .bind(ledger_id)
    .bind(below)
    .bind(limit.clamp(1, 1000))
    .fetch_all(&mut *conn)
    .await?)
}
