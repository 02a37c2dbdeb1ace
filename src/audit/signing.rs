//! The ledger's signing identity: one Ed25519 key (the 32-byte seed in `RootKeys`) whose
//! signed-note key name is the configured origin, and the per-ledger checkpoint origin
//! `<origin>/<ledger id>`. The verifier key is what `GET /v1/audit/keys` publishes and what
//! export bundles carry.

use ed25519_dalek::SigningKey;
use uuid::Uuid;

use super::checkpoint::{Checkpoint, CheckpointError, NoteSigner, NoteVerifier, open_checkpoint, sign_checkpoint};
use super::merkle::Hash;
use crate::keys::RootKeys;

/// The ledger id of events that belong to no organization.
pub const SYSTEM_LEDGER: Uuid = Uuid::nil();

/// Signs checkpoints for every ledger of this installation.
#[derive(Debug, Clone)]
pub struct LedgerSigner {
    origin: String,
    signer: NoteSigner,
}

impl LedgerSigner {
    /// `origin` is validated by the settings (no spaces, no '+').
    pub fn new(origin: &str, keys: &RootKeys) -> Result<Self, CheckpointError> {
        let signer = NoteSigner::new(origin, SigningKey::from_bytes(keys.ledger_signing.expose()))?;
        Ok(Self { origin: origin.to_owned(), signer })
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// The checkpoint origin line of one ledger.
    pub fn origin_for(&self, ledger_id: Uuid) -> String {
        origin_for(&self.origin, ledger_id)
    }

    /// The signed note for `ledger_id` at `size` with `root`.
    pub fn sign(&self, ledger_id: Uuid, size: u64, root: Hash) -> Result<String, CheckpointError> {
        let cp = Checkpoint::new(self.origin_for(ledger_id), size, root)?;
        sign_checkpoint(&cp, std::slice::from_ref(&self.signer))
    }
}

pub fn origin_for(origin: &str, ledger_id: Uuid) -> String {
    format!("{origin}/{ledger_id}")
}

/// Why a stored or supplied checkpoint note is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteProblem {
    #[error("bad signature: {0}")]
    Signature(CheckpointError),
    #[error("checkpoint is for origin {found:?}, expected {expected:?}")]
    Origin { found: String, expected: String },
}

/// Opens a checkpoint note with `known` keys and checks it names `expected_origin`
/// (`open_checkpoint` leaves the origin to the caller).
pub fn open_for(note: &[u8], known: &[NoteVerifier], expected_origin: &str) -> Result<Checkpoint, NoteProblem> {
    let cp = open_checkpoint(note, known).map_err(NoteProblem::Signature)?;
    if cp.origin != expected_origin {
        return Err(NoteProblem::Origin { found: cp.origin, expected: expected_origin.to_owned() });
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_per_ledger_origin_and_rejects_other_origins() {
        let s = LedgerSigner::new("h.example/ledger", &RootKeys::random()).unwrap();
        let org = Uuid::new_v4();
        let note = s.sign(org, 3, [7; 32]).unwrap();
        let known = [s.verifier()];
        let cp = open_for(note.as_bytes(), &known, &s.origin_for(org)).unwrap();
        assert_eq!((cp.size, cp.root), (3, [7; 32]));
        let other = open_for(note.as_bytes(), &known, &s.origin_for(SYSTEM_LEDGER)).unwrap_err();
        assert!(matches!(other, NoteProblem::Origin { .. }));
        let stranger = LedgerSigner::new("h.example/ledger", &RootKeys::random()).unwrap();
        assert!(matches!(
            open_for(note.as_bytes(), &[stranger.verifier()], &s.origin_for(org)),
            Err(NoteProblem::Signature(_))
        ));
    }
}
