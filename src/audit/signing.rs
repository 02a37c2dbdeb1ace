//! The ledger's signing identity: an Ed25519 key (the 32-byte seed in `RootKeys`) whose
//! signed-note key name is the configured origin, and the per-ledger checkpoint origin
//! `<origin>/<ledger id>`. The verifier keys are what `GET /v1/audit/keys` publishes and what
//! export bundles carry.
//!
//! Rotation: `CUSTOS_LEDGER_NEXT_SIGNING_KEY` co-signs every checkpoint during a change-over
//! (verifiers ignore signatures by keys they do not know, so old and new verifiers both
//! accept the notes); once verifiers have the new key it becomes `CUSTOS_LEDGER_SIGNING_KEY`
//! and the old public key moves to `CUSTOS_LEDGER_PREVIOUS_KEYS`, still trusted for old notes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use secrecy::ExposeSecret;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::checkpoint::{Checkpoint, CheckpointError, NoteSigner, NoteVerifier, open_checkpoint, sign_checkpoint};
use super::merkle::Hash;
use crate::keys::RootKeys;

/// The ledger id of events that belong to no organization.
pub const SYSTEM_LEDGER: Uuid = Uuid::nil();

/// Signs checkpoints for every ledger of this installation.
#[derive(Debug, Clone)]
pub struct LedgerSigner {
    origin: String,
    signers: Vec<NoteSigner>,
    previous: Vec<NoteVerifier>,
}

impl LedgerSigner {
    /// `origin` is validated by the settings (no spaces, no '+').
    pub fn new(origin: &str, keys: &RootKeys) -> Result<Self, CheckpointError> {
        let signer = NoteSigner::new(origin, SigningKey::from_bytes(keys.ledger_signing.expose()))?;
        Ok(Self { origin: origin.to_owned(), signers: vec![signer], previous: Vec::new() })
    }

    /// The signer of `settings.ledger`: the current key, the co-signing next key and the
    /// previous verifier keys, if configured.
    pub fn from_settings(settings: &crate::config::Settings, keys: &RootKeys) -> Result<Self, CheckpointError> {
        let mut s = Self::new(&settings.ledger.origin, keys)?;
        if let Some(next) = &settings.ledger.next_signing_key {
            let bad = || CheckpointError::MalformedKey("CUSTOS_LEDGER_NEXT_SIGNING_KEY must be base64 of 32 bytes");
            let raw = Zeroizing::new(B64.decode(next.expose_secret().trim()).map_err(|_| bad())?);
            let seed: &[u8; 32] = raw.as_slice().try_into().map_err(|_| bad())?;
            s.signers.push(NoteSigner::new(&settings.ledger.origin, SigningKey::from_bytes(seed))?);
        }
        for k in &settings.ledger.previous_keys {
            s.previous.push(NoteVerifier::parse(k)?);
        }
        Ok(s)
    }

    /// The current signing key's verifier.
    pub fn verifier(&self) -> NoteVerifier {
        self.signers[0].verifier()
    }

    /// Every key a verifier should trust: current, next, previous.
    pub fn verifiers(&self) -> Vec<NoteVerifier> {
        self.signers.iter().map(NoteSigner::verifier).chain(self.previous.iter().cloned()).collect()
    }

    /// The checkpoint origin line of one ledger.
    pub fn origin_for(&self, ledger_id: Uuid) -> String {
        origin_for(&self.origin, ledger_id)
    }

    /// The signed note for `ledger_id` at `size` with `root`, signed under the key name
    /// equal to the checkpoint's origin (C2SP tlog-checkpoint: the key name SHOULD match).
    pub fn sign(&self, ledger_id: Uuid, size: u64, root: Hash) -> Result<String, CheckpointError> {
        let origin = self.origin_for(ledger_id);
        let signers = self.signers.iter().map(|s| s.renamed(&origin)).collect::<Result<Vec<_>, _>>()?;
        sign_checkpoint(&Checkpoint::new(origin, size, root)?, &signers)
    }
}

pub fn origin_for(origin: &str, ledger_id: Uuid) -> String {
    format!("{origin}/{ledger_id}")
}

/// `known` plus, for each key named like the installation (`<origin>`), the same key named
/// `ledger_origin` (`<origin>/<ledger id>`): the verifier keys of one ledger's checkpoints.
pub fn ledger_verifiers(known: &[NoteVerifier], ledger_origin: &str) -> Vec<NoteVerifier> {
    let mut out = known.to_vec();
    for k in known {
        if ledger_origin.strip_prefix(k.name()).is_some_and(|rest| rest.starts_with('/')) {
            out.extend(k.renamed(ledger_origin).ok());
        }
    }
    out
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
///
/// Checkpoints signed before per-ledger key names carry the installation's key name
/// (`<origin>`); newer ones the ledger's origin (`<origin>/<ledger id>`). A known key named
/// `<origin>` is therefore also trusted under the name `expected_origin` when that extends it
/// ([`ledger_verifiers`]), so one published key list checks old and new notes.
pub fn open_for(note: &[u8], known: &[NoteVerifier], expected_origin: &str) -> Result<Checkpoint, NoteProblem> {
    // Also under the origin the note claims, so a note of another ledger is reported as such.
    let mut keys = ledger_verifiers(known, expected_origin);
    let claimed = note.split(|b| *b == b'\n').next().and_then(|l| std::str::from_utf8(l).ok());
    if let Some(claimed) = claimed.filter(|c| *c != expected_origin) {
        keys.extend(ledger_verifiers(known, claimed).into_iter().skip(known.len()));
    }
    let cp = open_checkpoint(note, &keys).map_err(NoteProblem::Signature)?;
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
        // The key name is the ledger's origin.
        assert!(note.contains(&format!("\n\u{2014} {} ", s.origin_for(org))), "{note}");
        // Checkpoints signed under the installation's key name (before per-ledger names) verify.
        let old_style = sign_checkpoint(&Checkpoint::new(s.origin_for(org), 3, [7; 32]).unwrap(), &s.signers).unwrap();
        assert!(open_for(old_style.as_bytes(), &known, &s.origin_for(org)).is_ok());
        let other = open_for(note.as_bytes(), &known, &s.origin_for(SYSTEM_LEDGER)).unwrap_err();
        assert!(matches!(other, NoteProblem::Origin { .. }));
        let stranger = LedgerSigner::new("h.example/ledger", &RootKeys::random()).unwrap();
        assert!(matches!(
            open_for(note.as_bytes(), &[stranger.verifier()], &s.origin_for(org)),
            Err(NoteProblem::Signature(_))
        ));
    }

    #[test]
    fn rotation_co_signs_and_keeps_previous_keys_trusted() {
        let (old, new) = (RootKeys::random(), RootKeys::random());
        let old_signer = LedgerSigner::new("h.example/l", &old).unwrap();
        let next = B64.encode(new.ledger_signing.expose());
        let prev = old_signer.verifier().encode();
        let map = [("CUSTOS_LEDGER_ORIGIN", "h.example/l"), ("CUSTOS_LEDGER_NEXT_SIGNING_KEY", next.as_str())];
        let settings =
            crate::config::Settings::from_lookup(|k| map.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
                .unwrap();
        // During the change-over: old key current, new key co-signs.
        let during = LedgerSigner::from_settings(&settings, &old).unwrap();
        let note = during.sign(SYSTEM_LEDGER, 1, [1; 32]).unwrap();
        let new_only = LedgerSigner::new("h.example/l", &new).unwrap().verifier();
        let origin = during.origin_for(SYSTEM_LEDGER);
        assert!(open_for(note.as_bytes(), &[old_signer.verifier()], &origin).is_ok(), "old verifiers accept it");
        assert!(open_for(note.as_bytes(), std::slice::from_ref(&new_only), &origin).is_ok(), "new verifiers accept it");
        assert_eq!(during.verifiers().len(), 2);
        // After: new key current, old key only trusted for old notes.
        let map = [("CUSTOS_LEDGER_ORIGIN", "h.example/l"), ("CUSTOS_LEDGER_PREVIOUS_KEYS", prev.as_str())];
        let settings =
            crate::config::Settings::from_lookup(|k| map.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
                .unwrap();
        let after = LedgerSigner::from_settings(&settings, &new).unwrap();
        let old_note = old_signer.sign(SYSTEM_LEDGER, 1, [1; 32]).unwrap();
        assert!(open_for(old_note.as_bytes(), &after.verifiers(), &origin).is_ok());
        assert_eq!(after.verifier(), new_only);
    }
}
