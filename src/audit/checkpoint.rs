//! Signed checkpoints: the C2SP `tlog-checkpoint` body
//! (`<origin>\n<size>\n<base64 root>\n`) wrapped in a C2SP `signed-note` with
//! Ed25519 signatures, plus the `golang.org/x/mod/sumdb/note` key string formats
//! (`<name>+<hex key id>+<base64(0x01 ‖ key)>`, and `PRIVATE+KEY+…` for signers),
//! so auditors can check Custos checkpoints with existing Go tooling.
//!
//! Verification follows c2sp.org/signed-note: signatures whose (key name, key
//! id) pair is unknown are ignored, which is what allows key rotation and
//! witness cosignatures; a known key with a bad signature rejects the whole
//! note; at least one known key must have signed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

// `super::` so the module works unchanged under `crate::audit` in the main crate.
use super::merkle::Hash;

/// Signature type byte of Ed25519 in c2sp.org/signed-note.
pub const ALG_ED25519: u8 = 0x01;

/// Signature lines beyond this make a note malformed (the spec requires ≥ 16;
/// x/mod/sumdb/note uses 100) so a hostile note cannot make us loop forever.
pub const MAX_SIGNATURES: usize = 100;

const SIG_PREFIX: &str = "\u{2014} ";
const SIGNER_PREFIX: &str = "PRIVATE+KEY+";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("invalid key name {0:?}: must be non-empty, without spaces, '+' or control characters")]
    InvalidKeyName(String),
    #[error("invalid checkpoint origin: {0}")]
    InvalidOrigin(&'static str),
    #[error("malformed checkpoint body: {0}")]
    MalformedBody(&'static str),
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    #[error("malformed key string: {0}")]
    MalformedKey(&'static str),
    #[error("unsupported signature algorithm {0:#04x}")]
    UnsupportedAlgorithm(u8),
    #[error("key id in the key string does not match the key")]
    KeyIdMismatch,
    #[error("a note needs at least one signer")]
    NoSigners,
    #[error("several verifier keys match {name}+{key_id:08x}")]
    AmbiguousKey { name: String, key_id: u32 },
    #[error("invalid signature by known key {name}+{key_id:08x}")]
    InvalidSignature { name: String, key_id: u32 },
    #[error("note has no valid signature from a known key")]
    NoKnownSignature,
}

type Result<T> = std::result::Result<T, CheckpointError>;

/// A tree head: the body of a checkpoint note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self> {
        let origin = origin.into();
        if origin.is_empty() {
            return Err(CheckpointError::InvalidOrigin("empty"));
        }
        // A newline would shift every following line; notes forbid other controls.
        if origin.chars().any(|c| c < ' ') {
            return Err(CheckpointError::InvalidOrigin("contains a control character"));
        }
        Ok(Self { origin, size, root })
    }

    /// `<origin>\n<size>\n<base64 root>\n`, the exact bytes that get signed.
    pub fn to_body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// Parses a body strictly, so that exactly one byte string maps to each
    /// checkpoint. Custos never writes extension lines, so they are rejected.
    pub fn from_body(text: &str) -> Result<Self> {
        let malformed = CheckpointError::MalformedBody;
        let rest = text.strip_suffix('\n').ok_or(malformed("must end with a newline"))?;
        let mut lines = rest.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(malformed("needs origin, size and root lines"));
        };
        if lines.next().is_some() {
            return Err(malformed("extension lines are not supported"));
        }
        let canonical_size =
            !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
        if !canonical_size {
            return Err(malformed("tree size must be decimal without leading zeros"));
        }
        let size = size.parse::<u64>().map_err(|_| malformed("tree size out of range"))?;
        let root = B64
            .decode(root)
            .map_err(|_| malformed("root hash is not standard base64"))?
            .try_into()
            .map_err(|_| malformed("root hash must be 32 bytes"))?;
        Self::new(origin, size, root).map_err(|_| malformed("invalid origin"))
    }
}

/// Key names are a key's identity in notes: non-empty, no Unicode spaces, no
/// '+' (it separates key string fields), and no control characters below U+0020
/// (the signed-note rule; DEL and C1 controls are allowed, as in Go).
fn check_key_name(name: &str) -> Result<()> {
    let bad = |c: char| c.is_whitespace() || c == '+' || c < ' ';
    if name.is_empty() || name.chars().any(bad) {
        return Err(CheckpointError::InvalidKeyName(name.to_owned()));
    }
    Ok(())
}

/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]` as a big-endian u32.
pub fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ALG_ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Splits `name+hex8+base64` and checks everything but the key itself.
fn split_key_string(s: &str) -> Result<(&str, u32, [u8; 32])> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CheckpointError::MalformedKey("expected name+keyid+key"));
    };
    check_key_name(name)?;
    // from_str_radix alone would accept a sign ("+1234567").
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CheckpointError::MalformedKey("key id must be 8 hex digits"));
    }
    let id =
        u32::from_str_radix(id_hex, 16).map_err(|_| CheckpointError::MalformedKey("key id must be 8 hex digits"))?;
    let raw = B64.decode(key_b64).map_err(|_| CheckpointError::MalformedKey("key is not standard base64"))?;
    let (&alg, key) = raw.split_first().ok_or(CheckpointError::MalformedKey("empty key"))?;
    if alg != ALG_ED25519 {
        return Err(CheckpointError::UnsupportedAlgorithm(alg));
    }
    let key = key.try_into().map_err(|_| CheckpointError::MalformedKey("Ed25519 key must be 32 bytes"))?;
    Ok((name, id, key))
}

fn encode_key_string(name: &str, id: u32, key: &[u8; 32]) -> String {
    let mut raw = [0u8; 33];
    raw[0] = ALG_ED25519;
    raw[1..].copy_from_slice(key);
    format!("{name}+{id:08x}+{}", B64.encode(raw))
}

/// A public key that can check note signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self> {
        check_key_name(name)?;
        Ok(Self { name: name.to_owned(), key_id: key_id(name, &key), key })
    }

    /// The same key under another name (its key id changes with the name).
    pub fn renamed(&self, name: &str) -> Result<Self> {
        Self::new(name, self.key)
    }

    /// Parses `<name>+<hex8 key id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(vkey: &str) -> Result<Self> {
        let (name, id, key) = split_key_string(vkey)?;
        let key =
            VerifyingKey::from_bytes(&key).map_err(|_| CheckpointError::MalformedKey("not an Ed25519 public key"))?;
        let verifier = Self::new(name, key)?;
        if verifier.key_id != id {
            return Err(CheckpointError::KeyIdMismatch);
        }
        Ok(verifier)
    }

    /// The published `<name>+<hex8>+<base64>` form (`GET /v1/audit/keys`).
    pub fn encode(&self) -> String {
        encode_key_string(&self.name, self.key_id, self.key.as_bytes())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    fn verify(&self, text: &[u8], sig: &[u8]) -> bool {
        // verify_strict also rejects small-order keys and malleable signatures.
        Signature::from_slice(sig).is_ok_and(|sig| self.key.verify_strict(text, &sig).is_ok())
    }
}

/// A private key that signs notes. Its Debug output never shows the secret.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    pub fn new(name: &str, key: SigningKey) -> Result<Self> {
        check_key_name(name)?;
        Ok(Self { name: name.to_owned(), key_id: key_id(name, &key.verifying_key()), key })
    }

    /// A fresh key from the OS-seeded thread CSPRNG.
    pub fn generate(name: &str) -> Result<Self> {
        Self::new(name, SigningKey::generate(&mut rand::rng()))
    }

    /// Parses `PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 ‖ 32-byte seed)>`.
    pub fn parse(skey: &str) -> Result<Self> {
        let rest =
            skey.strip_prefix(SIGNER_PREFIX).ok_or(CheckpointError::MalformedKey("missing PRIVATE+KEY+ prefix"))?;
        let (name, id, seed) = split_key_string(rest)?;
        let signer = Self::new(name, SigningKey::from_bytes(&seed))?;
        // The id commits to the public key, so it catches a corrupted seed.
        if signer.key_id != id {
            return Err(CheckpointError::KeyIdMismatch);
        }
        Ok(signer)
    }

    /// The secret `PRIVATE+KEY+…` form; handle it like the key itself.
    pub fn encode(&self) -> String {
        let body = encode_key_string(&self.name, self.key_id, self.key.as_bytes());
        format!("{SIGNER_PREFIX}{body}")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), key_id: self.key_id, key: self.key.verifying_key() }
    }

    /// The same key under another name (its key id changes with the name).
    pub fn renamed(&self, name: &str) -> Result<Self> {
        Self::new(name, self.key.clone())
    }

    pub fn sign(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        }
    }
}

/// One signature line: `— <name> <base64(key id ‖ signature)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    /// The algorithm's signature bytes, without the key id.
    pub signature: Vec<u8>,
}

/// A note text and its signatures, verified or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// Includes the final newline, not the blank separator line.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// Notes must not contain ASCII control characters (below U+0020) but newline.
fn check_note_chars(s: &str) -> Result<()> {
    if s.bytes().any(|b| b < b' ' && b != b'\n') {
        return Err(CheckpointError::MalformedNote("control character"));
    }
    Ok(())
}

impl SignedNote {
    /// Signs `text` (which must end with a newline) with every signer.
    pub fn sign(text: &str, signers: &[NoteSigner]) -> Result<Self> {
        if !text.ends_with('\n') {
            return Err(CheckpointError::MalformedNote("text must end with a newline"));
        }
        check_note_chars(text)?;
        if signers.is_empty() {
            return Err(CheckpointError::NoSigners);
        }
        Ok(Self { text: text.to_owned(), signatures: signers.iter().map(|s| s.sign(text)).collect() })
    }

    /// Parses the wire form without checking any signature.
    pub fn parse(msg: &[u8]) -> Result<Self> {
        let malformed = CheckpointError::MalformedNote;
        let msg = std::str::from_utf8(msg).map_err(|_| malformed("not UTF-8"))?;
        check_note_chars(msg)?;
        // The text may contain blank lines; the last one separates the signatures.
        let split = msg.rfind("\n\n").ok_or(malformed("no blank line before signatures"))?;
        let (text, sigs) = (&msg[..=split], &msg[split + 2..]);
        let body = sigs.strip_suffix('\n').ok_or(malformed("signatures must end with a newline"))?;
        let mut signatures = Vec::new();
        for line in body.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(malformed("too many signatures"));
            }
            let line = line.strip_prefix(SIG_PREFIX).ok_or(malformed("signature line must start with an em dash"))?;
            let (name, b64) = line.split_once(' ').ok_or(malformed("no signature"))?;
            check_key_name(name).map_err(|_| malformed("invalid key name"))?;
            let raw = B64.decode(b64).map_err(|_| malformed("signature is not standard base64"))?;
            let (id, signature) = match raw.split_first_chunk::<4>() {
                Some((id, sig)) if !sig.is_empty() => (u32::from_be_bytes(*id), sig.to_vec()),
                _ => return Err(malformed("signature too short")),
            };
            signatures.push(NoteSignature { name: name.to_owned(), key_id: id, signature });
        }
        Ok(Self { text: text.to_owned(), signatures })
    }

    /// The wire form: text, blank line, one line per signature.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 1 + 120 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for sig in &self.signatures {
            let mut raw = Vec::with_capacity(4 + sig.signature.len());
            raw.extend_from_slice(&sig.key_id.to_be_bytes());
            raw.extend_from_slice(&sig.signature);
            out.push_str(SIG_PREFIX);
            out.push_str(&sig.name);
            out.push(' ');
            out.push_str(&B64.encode(raw));
            out.push('\n');
        }
        out
    }

    /// Checks the signatures against `known` keys and returns the keys that
    /// signed. Unknown (name, id) pairs are skipped; any bad signature from a
    /// known key is an error; no known signature at all is an error.
    pub fn verify<'k>(&self, known: &'k [NoteVerifier]) -> Result<Vec<&'k NoteVerifier>> {
        let mut signed: Vec<&NoteVerifier> = Vec::new();
        for sig in &self.signatures {
            let mut matching = known.iter().filter(|v| v.key_id == sig.key_id && v.name == sig.name);
            let Some(verifier) = matching.next() else {
                continue;
            };
            if matching.next().is_some() {
                return Err(CheckpointError::AmbiguousKey { name: sig.name.clone(), key_id: sig.key_id });
            }
            if !verifier.verify(self.text.as_bytes(), &sig.signature) {
                return Err(CheckpointError::InvalidSignature { name: sig.name.clone(), key_id: sig.key_id });
            }
            if !signed.iter().any(|v| std::ptr::eq(*v, verifier)) {
                signed.push(verifier);
            }
        }
        if signed.is_empty() {
            return Err(CheckpointError::NoKnownSignature);
        }
        Ok(signed)
    }
}

/// Signs a checkpoint with one or more keys; returns the note's wire form.
pub fn sign_checkpoint(checkpoint: &Checkpoint, signers: &[NoteSigner]) -> Result<String> {
    Ok(SignedNote::sign(&checkpoint.to_body(), signers)?.encode())
}

/// Parses a signed checkpoint note, verifies it against `known`, and returns
/// the checkpoint. The body is only read after a signature checked out.
pub fn open_checkpoint(msg: &[u8], known: &[NoteVerifier]) -> Result<Checkpoint> {
    let note = SignedNote::parse(msg)?;
    note.verify(known)?;
    Checkpoint::from_body(&note.text)
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
