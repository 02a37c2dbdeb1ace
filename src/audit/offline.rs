//! `custos verify --bundle`: checks an export bundle with no database, streaming, in memory
//! independent of the ledger size. Event lines are hashed as they are (they *are* the leaf
//! input) rather than parsed; only their index is read, to name a missing or out-of-order
//! entry. Trust comes from the keys given on the command line; without them the bundle's own
//! keys are used, which proves integrity but not authorship (the report says so).

use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

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

/// A batch of raw lines: one buffer, and where each line is in it.
struct RawBatch {
    data: Vec<u8>,
    lines: Vec<Raw>,
}

enum Raw {
    Line { line: u64, start: usize, end: usize },
    Bad(BundleError),
}

/// Stage 1: reads lines into batches, handed alternately to the hashers. Stops at the end of
/// the input or at a read error / unterminated last line (sent as `Raw::Bad`).
fn read_batches<R: BufRead>(mut input: R, first: Option<Vec<u8>>, mut n: u64, txs: [SyncSender<RawBatch>; 2]) {
    let new_batch = || RawBatch { data: Vec::with_capacity(BATCH * 700), lines: Vec::with_capacity(BATCH) };
    let mut batch = new_batch();
    if let Some(l) = first {
        batch.data.extend_from_slice(&l);
        batch.lines.push(Raw::Line { line: n, start: 0, end: l.len() });
    }
    for k in 0usize.. {
        let mut stop = false;
        while batch.lines.len() < BATCH {
            n += 1;
            let start = batch.data.len();
            match input.read_until(b'\n', &mut batch.data) {
                Ok(0) => {
                    stop = true;
                    break;
                }
                Ok(_) if batch.data.last() == Some(&b'\n') => {
                    batch.lines.push(Raw::Line { line: n, start, end: batch.data.len() - 1 });
                }
                Ok(_) => {
                    batch.lines.push(Raw::Bad(malformed(n, "bundle is truncated (last line has no newline)")));
                    stop = true;
                    break;
                }
                Err(e) => {
                    batch.lines.push(Raw::Bad(e.into()));
                    stop = true;
                    break;
                }
            }
        }
        // A send error means the verifier stopped early (a malformed record).
        if txs[k % 2].send(std::mem::replace(&mut batch, new_batch())).is_err() || stop {
            return;
        }
    }
}

/// Stage 2 (two of them): classifies lines and hashes event leaves.
fn hash_batches(rx: Receiver<RawBatch>, tx: SyncSender<Vec<Rec>>) {
    for batch in rx {
        let mut out = Vec::with_capacity(batch.lines.len());
        for raw in batch.lines {
            let (n, text) = match raw {
                Raw::Bad(e) => {
                    out.push(Rec::Bad(e));
                    break;
                }
                Raw::Line { line, start, end } => (line, &batch.data[start..end]),
            };
            let rec = if let Some(json) = text.strip_prefix(b"event ") {
                Rec::Event { line: n, leaf: merkle::leaf_hash(json), index: event_index(json) }
            } else if let Some(b64) = text.strip_prefix(b"checkpoint ") {
                match B64.decode(b64) {
                    Ok(note) => Rec::Checkpoint { line: n, note },
                    Err(_) => Rec::Bad(malformed(n, "checkpoint is not base64")),
                }
            } else if let Some(t) = text.strip_prefix(b"end ") {
                match std::str::from_utf8(t).ok().and_then(|t| t.parse().ok()) {
                    Some(size) => Rec::End { line: n, size },
                    None => Rec::Bad(malformed(n, "bad end size")),
                }
            } else {
                Rec::Bad(malformed(n, "unknown line"))
            };
            let bad = matches!(rec, Rec::Bad(_));
            out.push(rec);
            if bad {
                break;
            }
        }
        if tx.send(out).is_err() {
            return;
        }
    }
}

/// Receives hashed batches in reading order (alternating between the two hashers).
struct InOrder {
    rx: [Receiver<Vec<Rec>>; 2],
    k: usize,
}

impl Iterator for InOrder {
    type Item = Vec<Rec>;
    fn next(&mut self) -> Option<Vec<Rec>> {
        let batch = self.rx[self.k % 2].recv().ok()?;
        self.k += 1;
        Some(batch)
    }
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
    // A pipeline: a reader thread splits lines, two hasher threads hash event leaves (most of
    // the SHA-256 work) batch by batch, and this thread consumes the batches in order,
    // extending the chain and the tree and checking checkpoints.
    let first = more.then(|| std::mem::take(&mut line));
    let (raw0, raw_rx0) = sync_channel::<RawBatch>(2);
    let (raw1, raw_rx1) = sync_channel::<RawBatch>(2);
    let (out0, rx0) = sync_channel::<Vec<Rec>>(2);
    let (out1, rx1) = sync_channel::<Vec<Rec>>(2);
    std::thread::scope(|scope| -> Result<(), BundleError> {
        scope.spawn(move || read_batches(input, first, n, [raw0, raw1]));
        scope.spawn(move || hash_batches(raw_rx0, out0));
        scope.spawn(move || hash_batches(raw_rx1, out1));
        for batch in (InOrder { rx: [rx0, rx1], k: 0 }) {
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
