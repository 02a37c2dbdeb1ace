//! Single-event proofs as `c2sp.org/tlog-proof@v1` files (`.tlog-proof`): the event's
//! canonical bytes as the `extra` line, its ledger index, the RFC 9162 inclusion proof and the
//! signed checkpoint verbatim (with any witness cosignatures). Offline verification
//! (`custos verify --proof FILE --key KEY`) hashes the extra data into the leaf
//! (`SHA-256(0x00 ‖ canonical bytes)`), so the event content is authenticated by the
//! inclusion proof rather than trusted (the spec: applications MUST NOT trust `extra` on its
//! own), then checks the checkpoint's signature by a trusted log key and the proof.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::checkpoint::{Checkpoint, NoteVerifier, SignedNote};
use super::cosignature::CosignatureVerifier;
use super::merkle::{self, Hash};
use super::signing;

pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed proof file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The checkpoint note, verbatim (signature lines included).
    pub checkpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFileError {
    #[error("malformed tlog-proof: {0}")]
    Malformed(&'static str),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("inclusion proof does not verify: {0}")]
    Inclusion(String),
    #[error("{found} valid witness cosignature(s), {required} required")]
    TooFewCosignatures { found: usize, required: usize },
}

impl TlogProof {
    pub fn encode(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(text: &str) -> Result<Self, ProofFileError> {
        let bad = ProofFileError::Malformed;
        let (head, checkpoint) = text.split_once("\n\n").ok_or(bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n').peekable();
        if lines.next() != Some(HEADER) {
            return Err(bad("first line must be c2sp.org/tlog-proof@v1"));
        }
        let extra = match lines.peek().and_then(|l| l.strip_prefix("extra ")) {
            Some(b) => {
                let v = B64.decode(b).map_err(|_| bad("extra is not base64"))?;
                lines.next();
                Some(v)
            }
            None => None,
        };
        let index = lines.next().and_then(|l| l.strip_prefix("index ")).ok_or(bad("missing index line"))?;
        let canonical =
            !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) && (index == "0" || !index.starts_with('0'));
        let index = canonical.then(|| index.parse::<u64>().ok()).flatten().ok_or(bad("index must be decimal"))?;
        let mut proof = Vec::new();
        for l in lines {
            let h = B64.decode(l).ok().and_then(|v| Hash::try_from(v).ok());
            proof.push(h.ok_or(bad("proof line is not a base64 SHA-256 hash"))?);
            if proof.len() > 64 {
                return Err(bad("too many proof lines"));
            }
        }
        Ok(Self { extra, index, proof, checkpoint: checkpoint.to_owned() })
    }

    /// Verifies the proof with trusted log keys: the checkpoint's signature (key names as
    /// published, old installation-wide names included), the leaf from the extra data, the
    /// inclusion proof, and at least `required` cosignatures by `witnesses`.
    pub fn verify(
        &self,
        keys: &[NoteVerifier],
        witnesses: &[CosignatureVerifier],
        required: usize,
    ) -> Result<Checkpoint, ProofFileError> {
        let origin = self.checkpoint.split('\n').next().unwrap_or_default();
        let cp = signing::open_for(self.checkpoint.as_bytes(), keys, origin)
            .map_err(|e| ProofFileError::Checkpoint(e.to_string()))?;
        let extra = self.extra.as_deref().ok_or(ProofFileError::Malformed("no extra line: the event is needed"))?;
        merkle::verify_inclusion(&merkle::leaf_hash(extra), self.index, cp.size, &self.proof, &cp.root)
            .map_err(|e| ProofFileError::Inclusion(e.to_string()))?;
        if required > 0 {
            let note =
                SignedNote::parse(self.checkpoint.as_bytes()).map_err(|e| ProofFileError::Checkpoint(e.to_string()))?;
            let found = CosignatureVerifier::count_valid(witnesses, &note);
            if found < required {
                return Err(ProofFileError::TooFewCosignatures { found, required });
            }
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::{NoteSigner, sign_checkpoint};
    use crate::audit::cosignature::{Cosigner, signature_line};
    use crate::audit::merkle::MemoryTree;

    #[test]
    fn a_proof_file_round_trips_and_verifies_only_for_its_event() {
        let events: Vec<Vec<u8>> = (0..7u8).map(|i| vec![b'e', i]).collect();
        let leaves: Vec<Hash> = events.iter().map(|e| merkle::leaf_hash(e)).collect();
        let tree = MemoryTree::from_leaves(&leaves);
        let log = NoteSigner::generate("custos.test/ledger/x").unwrap();
        let note = sign_checkpoint(
            &Checkpoint::new("custos.test/ledger/x", 7, tree.root()).unwrap(),
            std::slice::from_ref(&log),
        )
        .unwrap();
        let w = Cosigner::generate("w1").unwrap();
        let body = SignedNote::parse(note.as_bytes()).unwrap().text;
        let cosigned = format!("{note}{}", signature_line(&w.cosign(&body, 5)));
        let p = TlogProof {
            extra: Some(events[3].clone()),
            index: 3,
            proof: merkle::inclusion_proof(&tree, 3, 7).unwrap(),
            checkpoint: cosigned,
        };
        let text = p.encode();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra ZQM=\nindex 3\n"));
        let back = TlogProof::parse(&text).unwrap();
        assert_eq!(back, p);
        let keys = [log.verifier()];
        assert_eq!(back.verify(&keys, &[w.verifier()], 1).unwrap().size, 7);
        let other = Cosigner::generate("w2").unwrap().verifier();
        assert!(matches!(back.verify(&keys, &[other], 1), Err(ProofFileError::TooFewCosignatures { .. })));
        // Another event's bytes, another index, or another log key: refused.
        let mut forged = back.clone();
        forged.extra = Some(events[4].clone());
        assert!(matches!(forged.verify(&keys, &[], 0), Err(ProofFileError::Inclusion(_))));
        let mut moved = back.clone();
        moved.index = 4;
        assert!(moved.verify(&keys, &[], 0).is_err());
        let stranger = NoteSigner::generate("custos.test/ledger/x").unwrap();
        assert!(matches!(back.verify(&[stranger.verifier()], &[], 0), Err(ProofFileError::Checkpoint(_))));
        assert!(TlogProof::parse("c2sp.org/tlog-proof@v1\nindex 03\n\nx").is_err());
    }
}
