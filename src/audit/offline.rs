//! `custos verify --bundle`: checks an export bundle with no database, streaming, in memory
//! independent of the ledger size. Event lines are hashed as they are (they *are* the leaf
//! input) rather than parsed; only their index is read, to name a missing or out-of-order
//! entry. Trust comes from the keys given on the command line; without them the bundle's own
//! keys are used, which proves integrity but not authorship (the report says so).

use std::io::BufRead;
use std::sync::mpsc::SyncSender;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use uuid::Uuid;

use super::bundle::MAGIC;
use super::checkpoint::{Checkpoint, NoteVerifier};
use super::merkle::{self, CHAIN_SEED, Hash, TreeState};
use super::signing;
use super::verify::{Finding, Kind};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read the bundle: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {problem}")]
    Malformed { line: u64, problem: String },
    #[error("--checkpoint: {0}")]
    External(String),
}

/// The verdict on a bundle.
#[derive(Debug, Clone)]
pub struct BundleReport {
    pub ledger_id: Uuid,
    pub size: u64,
    pub checkpoints: u64,
    /// True when no `--key` was given and the bundle's own keys were trusted.
    pub keys_from_bundle: bool,
    pub root: Hash,
    pub chain_head: Hash,
    pub finding: Option<Finding>,
}

fn malformed(line: u64, problem: impl Into<String>) -> BundleError {
    BundleError::Malformed { line, problem: problem.into() }
}

/// The `"index":N` of a canonical event line. Keys are sorted and every string value has its
/// quotes escaped, so the first `,"index":` is the key itself.
fn event_index(json: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b",\"index\":";
    // Jump from comma to comma (a handful before `index`) instead of comparing at every byte.
    let mut from = 0;
    let at = loop {
        let comma = from + json[from..].iter().position(|&b| b == b',')?;
        if json[comma..].starts_with(KEY) {
            break comma + KEY.len();
        }
        from = comma + 1;
    };
    let digits = json[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&json[at..at + digits]).ok()?.parse().ok()
}

/// One record of the bundle body, leaf already hashed.
enum Rec {
    Event { line: u64, leaf: Hash, index: Option<u64> },
    Checkpoint { line: u64, note: Vec<u8> },
    End { line: u64, size: u64 },
    Bad(BundleError),
}

impl Rec {
    fn line(&self) -> u64 {
        match self {
            Self::Event { line, .. } | Self::Checkpoint { line, .. } | Self::End { line, .. } => *line,
            Self::Bad(_) => 0,
        }
    }
}

const BATCH: usize = 4096;

/// The reader stage: classifies lines and hashes event leaves, in batches. Stops at the first
/// malformed line (sent as `Rec::Bad`) or at the end of the input.
fn read_records<R: BufRead>(mut input: R, first: Option<Vec<u8>>, mut n: u64, tx: SyncSender<Vec<Rec>>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut line = Vec::with_capacity(4096);
    let mut pending = first;
    loop {
        let current = match pending.take() {
            Some(l) => l,
            None => {
                line.clear();
                n += 1;
                match input.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) if line.last() == Some(&b'\n') => {
                        line.pop();
                        std::mem::take(&mut line)
                    }
                    Ok(_) => {
                        batch.push(Rec::Bad(malformed(n, "bundle is truncated (last line has no newline)")));
                        break;
                    }
                    Err(e) => {
                        batch.push(Rec::Bad(e.into()));
                        break;
                    }
                }
            }
        };
        let rec = if let Some(json) = current.strip_prefix(b"event ") {
            Rec::Event { line: n, leaf: merkle::leaf_hash(json), index: event_index(json) }
        } else if let Some(b64) = current.strip_prefix(b"checkpoint ") {
            match B64.decode(b64) {
                Ok(note) => Rec::Checkpoint { line: n, note },
                Err(_) => Rec::Bad(malformed(n, "checkpoint is not base64")),
            }
        } else if let Some(text) = current.strip_prefix(b"end ") {
            match std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()) {
                Some(size) => Rec::End { line: n, size },
                None => Rec::Bad(malformed(n, "bad end size")),
            }
        } else {
            Rec::Bad(malformed(n, "unknown line"))
        };
        let stop = matches!(rec, Rec::Bad(_));
        batch.push(rec);
        line = current;
        if stop {
            break;
        }
        // A send error means the verifier stopped (it found a malformed record).
        if batch.len() == BATCH && tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err() {
            return;
        }
    }
    let _ = tx.send(batch);
}

/// Verifies a bundle. `trusted`: keys from the command line (None: the bundle's). `external`:
/// signed checkpoints the auditor kept earlier; the bundle must be consistent with them.
/// `progress` is called every 2^16 events with the count so far.
pub fn verify_bundle<R: BufRead + Send>(
    mut input: R,
    trusted: Option<&[NoteVerifier]>,
    external: &[String],
    mut progress: impl FnMut(u64),
) -> Result<BundleReport, BundleError> {
    let mut line = Vec::with_capacity(4096);
    let mut n = 0u64;
    let mut next_line = |line: &mut Vec<u8>, n: &mut u64| -> Result<bool, BundleError> {
        line.clear();
        let read = input.read_until(b'\n', line)?;
        *n += 1;
        if read == 0 {
            return Ok(false);
        }
        if line.pop() != Some(b'\n') {
            return Err(malformed(*n, "bundle is truncated (last line has no newline)"));
        }
        Ok(true)
    };
    // Header.
    let header = |line: &[u8], n: u64, tag: &str| -> Result<String, BundleError> {
        let text = std::str::from_utf8(line).map_err(|_| malformed(n, "not UTF-8"))?;
        text.strip_prefix(tag).map(str::to_owned).ok_or_else(|| malformed(n, format!("expected `{tag}…`")))
    };
    if !next_line(&mut line, &mut n)? || line != MAGIC.as_bytes() {
        return Err(malformed(1, format!("not a bundle (first line must be `{MAGIC}`)")));
    }
    next_line(&mut line, &mut n)?;
    let ledger_id: Uuid = header(&line, n, "ledger ")?.parse().map_err(|_| malformed(n, "bad ledger id"))?;
    next_line(&mut line, &mut n)?;
    let origin = header(&line, n, "origin ")?;
    let mut bundle_keys = Vec::new();
    let mut more = next_line(&mut line, &mut n)?;
    while more && line.starts_with(b"key ") {
        let k = header(&line, n, "key ")?;
        bundle_keys.push(NoteVerifier::parse(&k).map_err(|e| malformed(n, e.to_string()))?);
        more = next_line(&mut line, &mut n)?;
    }
    let keys: &[NoteVerifier] = trusted.unwrap_or(&bundle_keys);
    let expected_origin = origin.clone();
    if !origin.ends_with(&format!("/{ledger_id}")) {
        return Err(malformed(3, "origin does not name the ledger"));
    }
    let mut ext: Vec<Checkpoint> = Vec::with_capacity(external.len());
    for note in external {
        let cp = signing::open_for(note.as_bytes(), keys, &expected_origin)
            .map_err(|e| BundleError::External(e.to_string()))?;
        ext.push(cp);
    }
    ext.sort_by_key(|c| c.size);

    let mut tree = TreeState::new();
    let mut chain = CHAIN_SEED;
    let mut checkpoints = 0u64;
    let mut signed_size = 0u64;
    let mut finding: Option<Finding> = None;
    let mut end: Option<u64> = None;
    let mut ext_next = 0usize;
    let mut last_line = n;
    let fail = |f: &mut Option<Finding>, index: u64, kind: Kind, detail: String| {
        f.get_or_insert(Finding { index, kind, detail });
    };
    // Two stages on two threads: this reader hashes leaves (most of the SHA-256 work) while
    // the caller's thread extends the chain and the tree and checks checkpoints.
    let first = more.then(|| std::mem::take(&mut line));
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Rec>>(8);
    std::thread::scope(|scope| -> Result<(), BundleError> {
        scope.spawn(move || read_records(input, first, n, tx));
        for batch in rx {
            for rec in batch {
                last_line = last_line.max(rec.line());
                if end.is_some() {
                    return Err(malformed(rec.line(), "content after the `end` line"));
                }
                match rec {
                    Rec::Bad(e) => return Err(e),
                    Rec::Event { line, leaf, index } => {
                        let expected = tree.size();
                        if finding.is_none() && index != Some(expected) {
                            let found = index.map_or("none".to_owned(), |i| i.to_string());
                            fail(
                                &mut finding,
                                expected,
                                Kind::MissingIndex,
                                format!("line {line} holds index {found}"),
                            );
                        }
                        chain = merkle::chain_hash(&chain, &leaf);
                        tree.append(leaf).map_err(|e| malformed(line, e.to_string()))?;
                        let size = tree.size();
                        while ext_next < ext.len() && ext[ext_next].size <= size {
                            let cp = &ext[ext_next];
                            if cp.size == size && cp.root != tree.root() {
                                let d =
                                    format!("the kept checkpoint at size {size} has another root: a fork or a rewrite");
                                fail(&mut finding, signed_size, Kind::RootMismatch, d);
                            }
                            ext_next += 1;
                        }
                        if size.is_multiple_of(1 << 16) {
                            progress(size);
                        }
                    }
                    Rec::Checkpoint { line, note } => {
                        let size = tree.size();
                        checkpoints += 1;
                        match signing::open_for(&note, keys, &expected_origin) {
                            Err(e) => {
                                fail(&mut finding, size, Kind::BadSignature, format!("checkpoint on line {line}: {e}"))
                            }
                            Ok(cp) if cp.size != size => fail(
                                &mut finding,
                                size,
                                Kind::MissingIndex,
                                format!(
                                    "checkpoint on line {line} is for size {} but {size} events precede it",
                                    cp.size
                                ),
                            ),
                            Ok(cp) if cp.root != tree.root() => fail(
                                &mut finding,
                                signed_size,
                                Kind::RootMismatch,
                                format!(
                                    "checkpoint at size {size} has another root: an event in [{signed_size}, {size}) differs"
                                ),
                            ),
                            Ok(_) => signed_size = size,
                        }
                    }
                    Rec::End { size, .. } => end = Some(size),
                }
            }
        }
        Ok(())
    })?;
    let n = last_line + 1;
    let size = tree.size();
    match end {
        None => return Err(malformed(n, "bundle is truncated (no `end` line)")),
        Some(e) if e != size => {
            fail(&mut finding, size.min(e), Kind::MissingIndex, format!("end says {e} events, found {size}"))
        }
        Some(_) => {}
    }
    if let Some(cp) = ext.iter().find(|c| c.size > size) {
        let d = format!("bundle ends at size {size} but a kept checkpoint is signed at size {}: rolled back", cp.size);
        fail(&mut finding, size, Kind::MissingIndex, d);
    }
    if signed_size < size {
        let d = format!("events [{signed_size}, {size}) are not covered by a valid signed checkpoint");
        fail(&mut finding, signed_size, Kind::RootMismatch, d);
    }
    progress(size);
    Ok(BundleReport {
        ledger_id,
        size,
        checkpoints,
        keys_from_bundle: trusted.is_none(),
        root: tree.root(),
        chain_head: chain,
        finding,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_index_reads_the_key_not_a_value() {
        let json = br#"{"action":"read","actor_role":",\"index\":9","index":42,"ledger_id":"x"}"#;
        assert_eq!(super::event_index(json), Some(42));
        assert_eq!(super::event_index(b"{}"), None);
    }
}
