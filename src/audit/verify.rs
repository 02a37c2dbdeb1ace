//! `custos verify` (online): recompute every ledger from the database — leaves from the event
//! columns, the hash chain, the Merkle root — and check it against every stored checkpoint
//! (signature, origin, root), against checkpoints kept outside the database, and against the
//! sequencer's ledger state. The first problem of each ledger is reported with its index.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::TryStreamExt;
use sqlx::PgConnection;
use uuid::Uuid;

use super::checkpoint::{Checkpoint, NoteVerifier, SignedNote};
use super::merkle::{self, CHAIN_SEED, Hash, TreeState};
use super::signing::{self, NoteProblem};
use super::store::{self, LogRow, StoreError};

/// What is wrong at the reported index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The stored leaf hash is not the hash of the stored event.
    LeafMismatch,
    /// The stored chain hash does not follow from the previous one and the leaf.
    ChainBreak,
    /// An index is absent (deleted entry, or a tail shorter than a signed checkpoint).
    MissingIndex,
    /// An entry exists that the ledger never integrated (beyond its recorded size).
    UnexpectedEntry,
    /// A checkpoint's signature (or origin) does not check out with the known keys.
    BadSignature,
    /// The recomputed root differs from a checkpoint's root at its size.
    RootMismatch,
    /// The sequencer's stored state disagrees with the recomputed log.
    StateMismatch,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeafMismatch => "leaf mismatch",
            Self::ChainBreak => "chain break",
            Self::MissingIndex => "missing index",
            Self::UnexpectedEntry => "unexpected entry",
            Self::BadSignature => "bad signature",
            Self::RootMismatch => "root mismatch",
            Self::StateMismatch => "state mismatch",
        }
    }
}

/// The first problem found in a ledger. For checkpoint problems `index` is the checkpoint's
/// tree size; for a root mismatch it is the first index not covered by a good checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub index: u64,
    pub kind: Kind,
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "index {}: {} ({})", self.index, self.kind.as_str(), self.detail)
    }
}

fn finding(index: u64, kind: Kind, detail: impl Into<String>) -> Finding {
    Finding { index, kind, detail: detail.into() }
}

/// One ledger's verdict.
#[derive(Debug, Clone)]
pub struct LedgerReport {
    pub ledger_id: Uuid,
    pub size: u64,
    pub checkpoints: usize,
    pub finding: Option<Finding>,
}

/// A checkpoint to hold the recomputed tree against, already opened (signature checked).
#[derive(Debug, Clone)]
struct Expect {
    root: Hash,
    source: &'static str,
}

/// Verifies every ledger. `external` are signed notes kept outside the database (any
/// ledger; matched by origin); notes for unknown origins are an error.
pub async fn verify_all(
    conn: &mut PgConnection,
    keys: &[NoteVerifier],
    origin: &str,
    external: &[String],
) -> Result<Vec<LedgerReport>, StoreError> {
    let mut ids: BTreeSet<Uuid> = sqlx::query_scalar(
        "SELECT ledger_id FROM audit_ledgers UNION SELECT DISTINCT ledger_id FROM audit_checkpoints \
         UNION SELECT DISTINCT ledger_id FROM audit_log",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut ext: BTreeMap<Uuid, Vec<Checkpoint>> = BTreeMap::new();
    let mut ext_problems: BTreeMap<Uuid, Finding> = BTreeMap::new();
    for note in external {
        let unsigned = |problem: String| StoreError::Corrupt { ledger_id: Uuid::nil(), problem };
        // The body names the ledger; the signature is checked right below.
        let cp = SignedNote::parse(note.as_bytes())
            .and_then(|n| Checkpoint::from_body(&n.text))
            .map_err(|e| unsigned(format!("external checkpoint: {e}")))?;
        let ledger_id = cp
            .origin
            .strip_prefix(origin)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.parse::<Uuid>().ok())
            .ok_or_else(|| {
                unsigned(format!("external checkpoint origin {:?} is not a ledger of {origin:?}", cp.origin))
            })?;
        ids.insert(ledger_id);
        match signing::open_for(note.as_bytes(), keys, &signing::origin_for(origin, ledger_id)) {
            Ok(cp) => ext.entry(ledger_id).or_default().push(cp),
            Err(e) => {
                ext_problems
                    .entry(ledger_id)
                    .or_insert_with(|| finding(cp.size, Kind::BadSignature, format!("external checkpoint: {e}")));
            }
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for ledger_id in ids {
        let mut report =
            verify_ledger(conn, ledger_id, keys, origin, ext.remove(&ledger_id).unwrap_or_default()).await?;
        if let Some(p) = ext_problems.remove(&ledger_id) {
            report.finding = Some(earliest(report.finding.take(), p));
        }
        out.push(report);
    }
    Ok(out)
}

fn earliest(a: Option<Finding>, b: Finding) -> Finding {
    match a {
        Some(a) if a.index <= b.index => a,
        _ => b,
    }
}

async fn verify_ledger(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    keys: &[NoteVerifier],
    origin: &str,
    external: Vec<Checkpoint>,
) -> Result<LedgerReport, StoreError> {
    let expected_origin = signing::origin_for(origin, ledger_id);
    let rows: Vec<(i64, Vec<u8>, String)> = sqlx::query_as(
        "SELECT tree_size, root_hash, signed_note FROM audit_checkpoints WHERE ledger_id = $1 ORDER BY tree_size",
    )
    .bind(ledger_id)
    .fetch_all(&mut *conn)
    .await?;
    let checkpoints = rows.len() + external.len();
    let mut problem: Option<Finding> = None;
    let mut expect: BTreeMap<u64, Vec<Expect>> = BTreeMap::new();
    for (size, root, note) in rows {
        let size = size as u64;
        match signing::open_for(note.as_bytes(), keys, &expected_origin) {
            Err(NoteProblem::Signature(e)) => {
                problem.get_or_insert_with(|| {
                    finding(size, Kind::BadSignature, format!("checkpoint at size {size}: {e}"))
                });
            }
            Err(e @ NoteProblem::Origin { .. }) => {
                problem.get_or_insert_with(|| {
                    finding(size, Kind::BadSignature, format!("checkpoint at size {size}: {e}"))
                });
            }
            Ok(cp) if cp.size != size || cp.root[..] != root[..] => {
                problem.get_or_insert_with(|| {
                    finding(
                        size,
                        Kind::BadSignature,
                        format!("checkpoint row at size {size} disagrees with its signed note"),
                    )
                });
            }
            Ok(cp) => expect.entry(size).or_default().push(Expect { root: cp.root, source: "stored checkpoint" }),
        }
    }
    for cp in external {
        expect.entry(cp.size).or_default().push(Expect { root: cp.root, source: "external checkpoint" });
    }

    let mut next = 0u64;
    let mut chain = CHAIN_SEED;
    let mut tree = TreeState::new();
    let mut last_good_cp = 0u64;
    let mut log_problem: Option<Finding> = None;
    let mut buf = Vec::with_capacity(1024);
    let sql = format!("SELECT {} FROM audit_log WHERE ledger_id = $1 ORDER BY seq", store::log_columns());
    {
        let mut stream = sqlx::query_as::<_, LogRow>(sqlx::AssertSqlSafe(sql)).bind(ledger_id).fetch(&mut *conn);
        while let Some(row) = stream.try_next().await? {
            let seq = row.seq as u64;
            if seq != next {
                log_problem = Some(finding(next, Kind::MissingIndex, format!("next stored index is {seq}")));
                break;
            }
            buf.clear();
            if let Err(e) = row.event.canonical(ledger_id, seq).write_canonical(&mut buf) {
                log_problem = Some(finding(seq, Kind::LeafMismatch, format!("event has no canonical form: {e}")));
                break;
            }
            let leaf = merkle::leaf_hash(&buf);
            if row.leaf_hash[..] != leaf[..] {
                log_problem = Some(finding(seq, Kind::LeafMismatch, "stored leaf hash is not the hash of the event"));
                break;
            }
            let c = merkle::chain_hash(&chain, &leaf);
            if row.chain_hash[..] != c[..] {
                log_problem = Some(finding(seq, Kind::ChainBreak, "stored chain hash does not follow"));
                break;
            }
            chain = c;
            tree.append(leaf)?;
            next += 1;
            if let Some(list) = expect.get(&next) {
                if let Some(bad) = list.iter().find(|e| e.root != tree.root()) {
                    log_problem = Some(finding(
                        last_good_cp,
                        Kind::RootMismatch,
                        format!(
                            "{} at size {next} has another root: an entry in [{last_good_cp}, {next}) differs",
                            bad.source
                        ),
                    ));
                    break;
                }
                last_good_cp = next;
            }
        }
    }
    if log_problem.is_none()
        && let Some((&size, list)) = expect.range(next + 1..).next()
    {
        log_problem = Some(finding(
            next,
            Kind::MissingIndex,
            format!(
                "rolled back: entries {next}..={} are missing (the log ends at size {next} but the {} at size {size} includes them)",
                size - 1,
                list[0].source
            ),
        ));
    }
    if log_problem.is_none() {
        log_problem = check_state(conn, ledger_id, next, &chain, &tree).await?;
    }
    let finding = match (problem, log_problem) {
        (Some(a), b) => Some(earliest(b, a)),
        (None, b) => b,
    };
    Ok(LedgerReport { ledger_id, size: next, checkpoints, finding })
}

async fn check_state(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    size: u64,
    chain: &Hash,
    tree: &TreeState,
) -> Result<Option<Finding>, StoreError> {
    let states = store::load_states(conn, &[ledger_id], false).await?;
    let Some(state) = states.get(&ledger_id) else {
        return Ok((size > 0).then(|| finding(0, Kind::UnexpectedEntry, "entries in a ledger that has no state")));
    };
    let recorded = state.tree.size();
    Ok(if recorded > size {
        Some(finding(size, Kind::MissingIndex, format!("log ends at size {size}, the ledger recorded {recorded}")))
    } else if recorded < size {
        Some(finding(recorded, Kind::UnexpectedEntry, format!("the ledger recorded only {recorded} entries")))
    } else if state.chain_head != *chain || state.tree.root() != tree.root() {
        Some(finding(size, Kind::StateMismatch, "stored chain head or root differs from the recomputed log"))
    } else {
        None
    })
}
