//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>) over the stored tree: tile paths, hash
//! tiles and entry bundles. A hash tile at tile level `L`, index `N`, width `W` is the
//! concatenation of the hashes of tree level `8L` nodes `[N·256, N·256 + W)`; those nodes are
//! complete subtrees, which the sequencer stores once (level 0: the leaf hashes in
//! `audit_log`, above: `audit_tree_nodes`), so a tile never has to be recomputed and a full
//! tile never changes. An entry bundle holds the canonical bytes of leaves
//! `[N·256, N·256 + W)`, each as a big-endian `uint16` length and the bytes.
//!
//! Hashes and checkpoints are read through `custos.tile_hashes` / `custos.tile_checkpoint`
//! (policies/65_ledger_tiles.sql): for a published ledger without a token, otherwise for the
//! ledger's own auditors and admins. Entries are read with the caller's claims under
//! `audit_log`'s policies.

use sqlx::PgConnection;
use uuid::Uuid;

use super::store::{self, LogRow, StoreError};

/// Entries (and hashes) per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;

/// What a `tile/…` path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRef {
    /// `None`: an entry bundle; `Some(L)`: a hash tile at tile level `L`.
    pub level: Option<u8>,
    pub index: u64,
    /// 1–256; 256 is a full tile.
    pub width: u16,
}

impl TileRef {
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// First element (node or leaf index at this tile's tree level).
    pub fn first(&self) -> u64 {
        self.index * TILE_WIDTH
    }
}

/// Parses the part of a tile path after `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
/// `<N>` is split in 3-digit segments, all but the last prefixed with `x` (`x001/x234/067`).
/// Only the canonical spelling is accepted. `None` for anything else.
pub fn parse_tile_path(path: &str) -> Option<TileRef> {
    let mut segs: Vec<&str> = path.split('/').collect();
    let level = match segs.first()? {
        &"entries" => None,
        l if !l.is_empty() && l.len() <= 2 && l.bytes().all(|b| b.is_ascii_digit()) => {
            let l: u8 = l.parse().ok()?;
            // Level 8L must be a tree level below 64; a canonical level has no leading zero.
            if l > 7 || (l.to_string() != **segs.first()?) {
                return None;
            }
            Some(l)
        }
        _ => return None,
    };
    segs.remove(0);
    let mut width = TILE_WIDTH as u16;
    if segs.len() >= 2 && segs[segs.len() - 2].ends_with(".p") {
        let w = segs.pop()?;
        if w.is_empty() || w.len() > 3 || w.starts_with('0') || !w.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        width = w.parse().ok()?;
        if width == 0 || u64::from(width) >= TILE_WIDTH {
            return None;
        }
        let last = segs.len() - 1;
        segs[last] = segs[last].strip_suffix(".p")?;
    }
    let index = parse_index(&segs)?;
    Some(TileRef { level, index, width })
}

fn parse_index(segs: &[&str]) -> Option<u64> {
    let (last, rest) = segs.split_last()?;
    let mut n: u64 = 0;
    for (i, seg) in rest.iter().map(|s| s.strip_prefix('x')).chain([Some(*last)]).enumerate() {
        let seg = seg?;
        if seg.len() != 3 || !seg.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // No leading all-zero group: the first segment of a canonical path is not x000.
        if i == 0 && !rest.is_empty() && seg == "000" {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(seg.parse().ok()?)?;
    }
    Some(n)
}

/// The `<N>` path form of `index` (for links and tests): `1234067` → `x001/x234/067`.
pub fn encode_index(index: u64) -> String {
    let mut groups = vec![index % 1000];
    let mut n = index / 1000;
    while n > 0 {
        groups.push(n % 1000);
        n /= 1000;
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| if i == last { format!("{g:03}") } else { format!("x{g:03}") })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `ledger` is published (its checkpoint and hash tiles are served without a token).
pub async fn is_public(conn: &mut PgConnection, ledger: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM audit_public_ledgers WHERE ledger_id = $1)")
        .bind(ledger)
        .fetch_one(&mut *conn)
        .await
}

/// Publishes (`true`) or withdraws (`false`) a ledger's checkpoint and hash tiles; RLS lets
/// only the organization's admin do it. Returns whether anything changed.
pub async fn set_public(
    conn: &mut PgConnection,
    ledger: Uuid,
    by: Option<Uuid>,
    public: bool,
) -> Result<bool, sqlx::Error> {
    let done = if public {
        sqlx::query("INSERT INTO audit_public_ledgers (ledger_id, published_by) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(ledger)
            .bind(by)
            .execute(&mut *conn)
            .await?
    } else {
        sqlx::query("DELETE FROM audit_public_ledgers WHERE ledger_id = $1").bind(ledger).execute(&mut *conn).await?
    };
    Ok(done.rows_affected() > 0)
}

/// The latest signed checkpoint `(size, note)`, if the caller may read it.
pub async fn checkpoint(conn: &mut PgConnection, ledger: Uuid) -> Result<Option<(u64, String)>, sqlx::Error> {
    let row: Option<(i64, String)> = sqlx::query_as("SELECT tree_size, signed_note FROM custos.tile_checkpoint($1)")
        .bind(ledger)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|(s, n)| (s as u64, n)))
}

/// The hash tile `tile`, or `None` when it does not exist (yet) or the caller may not read it.
pub async fn hash_tile(conn: &mut PgConnection, ledger: Uuid, tile: TileRef) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(level) = tile.level else { return Ok(None) };
    let tree_level = i16::from(level) * TILE_HEIGHT as i16;
    let first = i64::try_from(tile.first())
        .map_err(|_| StoreError::Corrupt { ledger_id: ledger, problem: "tile index".into() })?;
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT idx, hash FROM custos.tile_hashes($1, $2, $3, $4)")
        .bind(ledger)
        .bind(tree_level)
        .bind(first)
        .bind(i32::from(tile.width))
        .fetch_all(&mut *conn)
        .await?;
    if rows.len() != usize::from(tile.width) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(rows.len() * 32);
    for (i, (idx, hash)) in rows.iter().enumerate() {
        if *idx != first + i as i64 || hash.len() != 32 {
            return Err(StoreError::Corrupt { ledger_id: ledger, problem: format!("tree node ({tree_level}, {idx})") });
        }
        out.extend_from_slice(hash);
    }
    Ok(Some(out))
}

/// Appends one entry to a bundle: big-endian `uint16` length, then the bytes.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), EntryTooLong> {
    let len = u16::try_from(entry.len()).map_err(|_| EntryTooLong(entry.len()))?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// An entry longer than a bundle can carry (65535 bytes).
#[derive(Debug, thiserror::Error)]
#[error("entry of {0} bytes does not fit a tile bundle")]
pub struct EntryTooLong(pub usize);

/// The entry bundle `tile` (canonical event bytes), read with the caller's claims; `None`
/// when the ledger does not hold all its entries (yet).
pub async fn entry_bundle(conn: &mut PgConnection, ledger: Uuid, tile: TileRef) -> Result<Option<Vec<u8>>, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt { ledger_id: ledger, problem };
    let first = i64::try_from(tile.first()).map_err(|_| corrupt("tile index".into()))?;
    let sql = format!(
        "SELECT {} FROM audit_log WHERE ledger_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
        store::log_columns()
    );
    let rows: Vec<LogRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ledger)
        .bind(first)
        .bind(first + i64::from(tile.width))
        .fetch_all(&mut *conn)
        .await?;
    if rows.len() != usize::from(tile.width) {
        return Ok(None);
    }
    let mut bundle = Vec::with_capacity(rows.len() * 512);
    let mut buf = Vec::with_capacity(1024);
    for (i, row) in rows.iter().enumerate() {
        let seq = first + i as i64;
        if row.seq != seq {
            return Err(corrupt(format!("entry {seq} is missing")));
        }
        buf.clear();
        row.event.canonical(ledger, seq as u64).write_canonical(&mut buf).map_err(|e| corrupt(e.to_string()))?;
        push_entry(&mut bundle, &buf).map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(Some(bundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_round_trip_and_only_canonical_spellings_parse() {
        for (n, s) in [(0, "000"), (67, "067"), (1000, "x001/000"), (1_234_067, "x001/x234/067")] {
            assert_eq!(encode_index(n), s);
            assert_eq!(parse_tile_path(&format!("0/{s}")), Some(TileRef { level: Some(0), index: n, width: 256 }));
        }
        assert_eq!(parse_tile_path("entries/x001/234.p/17"), Some(TileRef { level: None, index: 1234, width: 17 }));
        assert_eq!(parse_tile_path("2/005.p/255"), Some(TileRef { level: Some(2), index: 5, width: 255 }));
        for bad in [
            "0/67",
            "0/0067",
            "0/x000/067",
            "0/001/002",
            "0/x1/002",
            "00/000",
            "8/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "0/000.p",
            "entries",
            "0/",
            "a/000",
            "0/000/",
            "-1/000",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn bundle_entries_are_u16_big_endian_length_prefixed() {
        let mut b = Vec::new();
        push_entry(&mut b, b"ab").unwrap();
        push_entry(&mut b, &[7u8; 300]).unwrap();
        assert_eq!(&b[..4], &[0, 2, b'a', b'b']);
        assert_eq!(&b[4..6], &[1, 44]);
        assert_eq!(b.len(), 4 + 2 + 300);
        assert!(push_entry(&mut b, &vec![0u8; 65536]).is_err());
    }
}
