//! The export bundle: one ledger, self-contained, verifiable offline with nothing else.
//! Line-oriented UTF-8 (docs/ledger-format.md is the normative description):
//!
//! ```text
//! custos-ledger-bundle 1
//! ledger <ledger uuid>
//! origin <checkpoint origin>
//! key <name+hex(key id)+base64(0x01 ‖ Ed25519 public key)>      (one or more)
//! event <canonical event JSON>                                    (index 0, 1, 2, …)
//! checkpoint <base64(signed note)>                                (right after the event that
//!                                                                  completes its tree size)
//! end <size>
//! ```
//!
//! Canonical JSON never contains a raw newline (JCS escapes control characters), so every
//! event is exactly one line and its bytes are exactly the leaf input. The bundle holds the
//! events up to the latest signed checkpoint, so every entry in it is covered by a signature.

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::TryStreamExt;
use sqlx::PgConnection;
use uuid::Uuid;

use super::checkpoint::NoteVerifier;
use super::signing;
use super::store::{self, LogRow, StoreError};

pub const MAGIC: &str = "custos-ledger-bundle 1";

/// Events fetched per round trip while exporting (bounds memory, keeps the cursor simple).
const PAGE: i64 = 20_000;

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub ledger_id: Uuid,
    pub size: u64,
    pub checkpoints: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the bundle: {0}")]
    Io(#[from] std::io::Error),
    #[error("ledger {0} has no signed checkpoint yet")]
    NothingSigned(Uuid),
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Writes the bundle of `ledger_id` up to its latest checkpoint. Memory stays constant: events
/// and checkpoints are read page by page in index order.
pub async fn export<W: Write>(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    origin: &str,
    keys: &[NoteVerifier],
    out: &mut W,
) -> Result<ExportSummary, ExportError> {
    let signed: Option<i64> = sqlx::query_scalar("SELECT max(tree_size) FROM audit_checkpoints WHERE ledger_id = $1")
        .bind(ledger_id)
        .fetch_one(&mut *conn)
        .await?;
    let size = signed.filter(|s| *s > 0).ok_or(ExportError::NothingSigned(ledger_id))?;
    writeln!(out, "{MAGIC}")?;
    writeln!(out, "ledger {ledger_id}")?;
    writeln!(out, "origin {}", signing::origin_for(origin, ledger_id))?;
    for k in keys {
        writeln!(out, "key {}", k.encode())?;
    }
    let sql = format!(
        "SELECT {} FROM audit_log WHERE ledger_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
        store::log_columns()
    );
    let mut buf = Vec::with_capacity(1024);
    let mut checkpoints = 0u64;
    let mut lo = 0i64;
    while lo < size {
        let hi = (lo + PAGE).min(size);
        let notes: Vec<(i64, String)> = sqlx::query_as(
            "SELECT tree_size, signed_note FROM audit_checkpoints WHERE ledger_id = $1 AND tree_size > $2 \
             AND tree_size <= $3 ORDER BY tree_size",
        )
        .bind(ledger_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *conn)
        .await?;
        let mut notes = notes.into_iter().peekable();
        let mut rows = sqlx::query_as::<_, LogRow>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(ledger_id)
            .bind(lo)
            .bind(hi)
            .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            // A gap is written as is: the verifier reports it, the export does not hide it.
            buf.clear();
            buf.extend_from_slice(b"event ");
            row.event
                .canonical(ledger_id, row.seq as u64)
                .write_canonical(&mut buf)
                .map_err(|e| StoreError::Corrupt { ledger_id, problem: e.to_string() })?;
            buf.push(b'\n');
            out.write_all(&buf)?;
            while let Some((_, note)) = notes.next_if(|(s, _)| *s <= row.seq + 1) {
                writeln!(out, "checkpoint {}", B64.encode(note.as_bytes()))?;
                checkpoints += 1;
            }
        }
        for (_, note) in notes {
            writeln!(out, "checkpoint {}", B64.encode(note.as_bytes()))?;
            checkpoints += 1;
        }
        lo = hi;
    }
    writeln!(out, "end {size}")?;
    out.flush()?;
    Ok(ExportSummary { ledger_id, size: size as u64, checkpoints })
}
