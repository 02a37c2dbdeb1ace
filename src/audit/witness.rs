//! A C2SP tlog-witness (c2sp.org/tlog-witness, `add-checkpoint`), without HTTP: the request
//! format, the checks in the order the spec gives them, and the witness's state — the latest
//! cosigned size and root per log origin — persisted atomically (temporary file, fsync,
//! rename, fsync of the directory) before a cosignature is returned. `custos witness`
//! (src/cli/witness.rs) serves it; the checkpointer (src/audit/witnessing.rs) is its client.
//!
//! Status codes, as the spec requires: 400 malformed request or old size above the
//! checkpoint size; 404 unknown origin; 403 no valid signature by a trusted log key (or a bad
//! one by a trusted key); 409 old size differs from the recorded size (body: that size,
//! `text/x.tlog.size`); 422 a consistency proof that does not verify, a non-empty proof from
//! size 0, equal sizes with different roots, or a size-0 checkpoint with a non-empty root.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, NoteVerifier, SignedNote};
use super::cosignature::{Cosigner, signature_line};
use super::merkle::{self, Hash};

/// The spec's limit on consistency proof lines.
pub const MAX_PROOF_LINES: usize = 63;

/// Why a witness refuses a checkpoint; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unknown log origin")]
    UnknownLog,
    #[error("no valid signature by a trusted log key: {0}")]
    Forbidden(String),
    #[error("old size does not match the latest cosigned size {0}")]
    Conflict(u64),
    #[error("not consistent with the latest cosigned checkpoint: {0}")]
    Inconsistent(String),
    #[error("cannot persist the witness state")]
    Storage,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::UnknownLog => 404,
            Self::Forbidden(_) => 403,
            Self::Conflict(_) => 409,
            Self::Inconsistent(_) => 422,
            Self::Storage => 500,
        }
    }
}

/// An `add-checkpoint` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

fn decimal(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

impl AddCheckpoint {
    pub fn encode(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(body: &[u8]) -> Result<Self, Refusal> {
        let bad = |m: &str| Refusal::BadRequest(m.to_owned());
        let text = std::str::from_utf8(body).map_err(|_| bad("body is not UTF-8"))?;
        let (head, checkpoint) = text.split_once("\n\n").ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines.next().and_then(|l| l.strip_prefix("old ")).ok_or_else(|| bad("first line must be `old N`"))?;
        let old_size = decimal(old).ok_or_else(|| bad("old size must be decimal without leading zeros"))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 consistency proof lines"));
            }
            let h = B64.decode(line).ok().and_then(|v| Hash::try_from(v).ok());
            proof.push(h.ok_or_else(|| bad("proof line is not a base64 SHA-256 hash"))?);
        }
        Ok(Self { old_size, proof, checkpoint: checkpoint.to_owned() })
    }
}

/// The first three lines of a checkpoint body (extension lines are allowed and cosigned).
fn tree_head(text: &str) -> Result<(String, u64, Hash), Refusal> {
    let bad = |m: &str| Refusal::BadRequest(m.to_owned());
    let mut lines = text.split('\n');
    let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(bad("checkpoint needs origin, size and root lines"));
    };
    if origin.is_empty() {
        return Err(bad("empty origin"));
    }
    let size = decimal(size).ok_or_else(|| bad("checkpoint size must be decimal"))?;
    let root = B64.decode(root).ok().and_then(|v| Hash::try_from(v).ok()).ok_or_else(|| bad("bad root hash"))?;
    Ok((origin.to_owned(), size, root))
}

/// What the witness remembers of one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogState {
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
    /// The latest cosigned checkpoint with the log's and this witness's signatures.
    pub checkpoint: String,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    pub logs: BTreeMap<String, LogState>,
}

impl State {
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Write to `<path>.tmp`, fsync, rename over `path`, fsync the directory: after a crash
    /// the file holds either the old or the new state, never a mix.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(dir)?.sync_all()
    }
}

/// A witness: its key, the logs it witnesses (origin → trusted log keys) and its state.
#[derive(Debug)]
pub struct Witness {
    cosigner: Cosigner,
    logs: HashMap<String, Vec<NoteVerifier>>,
    state_path: PathBuf,
    /// Held across check and persist, so two requests cannot roll the size back.
    state: std::sync::Mutex<State>,
}

impl Witness {
    pub fn open(
        cosigner: Cosigner,
        logs: HashMap<String, Vec<NoteVerifier>>,
        state_path: PathBuf,
    ) -> std::io::Result<Self> {
        let state = State::load(&state_path)?;
        Ok(Self { cosigner, logs, state_path, state: std::sync::Mutex::new(state) })
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    /// The latest cosigned checkpoint of the log whose origin hashes to `origin_hash`
    /// (lowercase hex SHA-256), for the monitoring endpoint.
    pub fn latest(&self, origin_hash: &str) -> Option<String> {
        use sha2::{Digest, Sha256};
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .logs
            .iter()
            .find(|(o, _)| hex::encode(Sha256::digest(o.as_bytes())) == origin_hash)
            .map(|(_, s)| s.checkpoint.clone())
    }

    /// Handles `add-checkpoint`: the cosignature line(s) on success.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, Refusal> {
        let req = AddCheckpoint::parse(body)?;
        let note = SignedNote::parse(req.checkpoint.as_bytes())
            .map_err(|e| Refusal::BadRequest(format!("checkpoint is not a signed note: {e}")))?;
        let (origin, size, root) = tree_head(&note.text)?;
        let keys = self.logs.get(&origin).ok_or(Refusal::UnknownLog)?;
        note.verify(keys).map_err(|e: CheckpointError| Refusal::Forbidden(e.to_string()))?;
        if req.old_size > size {
            return Err(Refusal::BadRequest("old size is larger than the checkpoint size".into()));
        }
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = state.logs.get(&origin);
        let known_size = known.map_or(0, |s| s.size);
        if req.old_size != known_size {
            return Err(Refusal::Conflict(known_size));
        }
        if size == 0 && root != merkle::empty_root() {
            return Err(Refusal::Inconsistent("a tree of size 0 must have the empty root".into()));
        }
        let old_root = match known {
            Some(s) => B64.decode(&s.root).ok().and_then(|v| Hash::try_from(v).ok()).ok_or(Refusal::Storage)?,
            None => merkle::empty_root(),
        };
        if let Err(e) = merkle::verify_consistency(req.old_size, size, &old_root, &root, &req.proof) {
            // Validly signed by the log yet inconsistent with what we cosigned: evidence of a
            // fork (or a rewritten history). Kept in the log; never cosigned.
            tracing::error!(origin = %origin, old_size = req.old_size, size, error = %e,
                "witness: signed checkpoint inconsistent with the cosigned history (possible fork)");
            metrics::counter!(INCONSISTENT).increment(1);
            return Err(Refusal::Inconsistent(e.to_string()));
        }
        let sig = self.cosigner.cosign(&note.text, now.max(1));
        let line = signature_line(&sig);
        let mut cosigned = note.clone();
        cosigned.signatures.retain(|s| keys.iter().any(|k| k.name() == s.name && k.key_id() == s.key_id));
        cosigned.signatures.push(sig);
        let mut next = state.clone();
        next.logs.insert(origin.clone(), LogState { size, root: B64.encode(root), checkpoint: cosigned.encode() });
        if let Err(e) = next.save(&self.state_path) {
            tracing::error!(error = %e, path = %self.state_path.display(), "witness: cannot persist state");
            return Err(Refusal::Storage);
        }
        *state = next;
        Ok(line)
    }
}

pub use crate::metrics::WITNESS_INCONSISTENT as INCONSISTENT;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::{Checkpoint, NoteSigner, sign_checkpoint};
    use crate::audit::merkle::{MemoryTree, leaf_hash};

    struct Fixture {
        log: NoteSigner,
        witness: Witness,
        _dir: tempdir::Dir,
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!("custos-witness-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }

    const ORIGIN: &str = "custos.test/ledger/1";

    fn fixture() -> Fixture {
        let dir = tempdir::new();
        let log = NoteSigner::generate(ORIGIN).unwrap();
        let logs = HashMap::from([(ORIGIN.to_owned(), vec![log.verifier()])]);
        let witness = Witness::open(Cosigner::generate("w.test/1").unwrap(), logs, dir.0.join("state.json")).unwrap();
        Fixture { log, witness, _dir: dir }
    }

    fn tree(n: u64, salt: u8) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[salt, i as u8])).collect()
    }

    fn note(signer: &NoteSigner, leaves: &[Hash]) -> String {
        let root = MemoryTree::from_leaves(leaves).root();
        sign_checkpoint(&Checkpoint::new(ORIGIN, leaves.len() as u64, root).unwrap(), std::slice::from_ref(signer))
            .unwrap()
    }

    fn req(old: u64, proof: Vec<Hash>, checkpoint: String) -> Vec<u8> {
        AddCheckpoint { old_size: old, proof, checkpoint }.encode().into_bytes()
    }

    fn proof(leaves: &[Hash], old: u64) -> Vec<Hash> {
        let t = MemoryTree::from_leaves(leaves);
        merkle::consistency_proof(&t, old, leaves.len() as u64).unwrap()
    }

    #[test]
    fn request_round_trips_and_rejects_junk() {
        let r =
            AddCheckpoint {
                old_size: 20, proof: vec![[1u8; 32], [2u8; 32]], checkpoint: "o\n1\nx\n\n— a b\n".into()
            };
        assert_eq!(AddCheckpoint::parse(r.encode().as_bytes()).unwrap(), r);
        for junk in ["old 01\n\nx", "old 1\nnot-base64\n\nx", "size 1\n\nx", "old 1\n"] {
            assert_eq!(AddCheckpoint::parse(junk.as_bytes()).unwrap_err().status(), 400, "{junk:?}");
        }
    }

    #[test]
    fn cosigns_a_consistent_history_and_refuses_per_spec() {
        let f = fixture();
        let leaves = tree(5, 0);
        let line = f.witness.add_checkpoint(&req(0, vec![], note(&f.log, &leaves[..3])), 100).unwrap();
        assert!(line.starts_with("\u{2014} w.test/1 "));
        // Cosignature verifies over the checkpoint body.
        let cp = SignedNote::parse(format!("{}{line}", note(&f.log, &leaves[..3])).as_bytes()).unwrap();
        assert_eq!(
            crate::audit::cosignature::CosignatureVerifier::count_valid(&[f.witness.cosigner().verifier()], &cp),
            1
        );

        // Stale old size → 409 with the known size.
        assert_eq!(f.witness.add_checkpoint(&req(0, vec![], note(&f.log, &leaves)), 1), Err(Refusal::Conflict(3)));
        // Old size above the checkpoint size → 400.
        assert_eq!(f.witness.add_checkpoint(&req(9, vec![], note(&f.log, &leaves)), 1).unwrap_err().status(), 400);
        // A good proof from 3 to 5 → cosigned.
        f.witness.add_checkpoint(&req(3, proof(&leaves, 3), note(&f.log, &leaves)), 101).unwrap();
        // A different tree at a larger size, validly signed by the real key → 422.
        let forged = tree(8, 9);
        let err = f.witness.add_checkpoint(&req(5, proof(&forged, 5), note(&f.log, &forged)), 102).unwrap_err();
        assert_eq!(err.status(), 422);
        // Same size, other root → 422.
        let err = f.witness.add_checkpoint(&req(5, vec![], note(&f.log, &forged[..5])), 103).unwrap_err();
        assert_eq!(err.status(), 422);
        // Unknown origin → 404; unknown signer → 403.
        let other = NoteSigner::generate("other/log").unwrap();
        let cp = sign_checkpoint(&Checkpoint::new("other/log", 1, [0u8; 32]).unwrap(), &[other]).unwrap();
        assert_eq!(f.witness.add_checkpoint(&req(0, vec![], cp), 1).unwrap_err().status(), 404);
        let impostor = NoteSigner::generate(ORIGIN).unwrap();
        assert_eq!(f.witness.add_checkpoint(&req(5, vec![], note(&impostor, &leaves)), 1).unwrap_err().status(), 403);
        // The state survived on disk: a reopened witness knows size 5.
        let reopened = Witness::open(
            Cosigner::generate("w.test/1").unwrap(),
            HashMap::from([(ORIGIN.to_owned(), vec![f.log.verifier()])]),
            f.witness.state_path.clone(),
        )
        .unwrap();
        assert_eq!(reopened.add_checkpoint(&req(0, vec![], note(&f.log, &leaves)), 1), Err(Refusal::Conflict(5)));
    }

    #[test]
    fn size_zero_needs_the_empty_root_and_old_zero_an_empty_proof() {
        let f = fixture();
        let bad =
            sign_checkpoint(&Checkpoint::new(ORIGIN, 0, [1u8; 32]).unwrap(), std::slice::from_ref(&f.log)).unwrap();
        assert_eq!(f.witness.add_checkpoint(&req(0, vec![], bad), 1).unwrap_err().status(), 422);
        let leaves = tree(2, 0);
        assert_eq!(
            f.witness.add_checkpoint(&req(0, vec![[0u8; 32]], note(&f.log, &leaves)), 1).unwrap_err().status(),
            422
        );
    }
}
