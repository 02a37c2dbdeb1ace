//! Witness cosignatures, c2sp.org/tlog-cosignature, Ed25519 variant (`cosignature/v1`).
//!
//! A cosignature is a note signature line on a checkpoint whose signed message is
//! `cosignature/v1\ntime <unix seconds>\n` followed by the checkpoint body, and whose
//! signature bytes are `u64 big-endian timestamp ‖ Ed25519 signature` (72 bytes). The key id
//! is `SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]`; keys travel as vkeys
//! `<name>+<hex8 key id>+<base64(0x04 ‖ public key)>` (c2sp.org/signed-note, type 0x04), and a
//! witness's private key as `PRIVATE+KEY+<name>+<hex8>+<base64(0x04 ‖ 32-byte seed)>`.
//!
//! Checkpoint signatures (type 0x01) and cosignatures never share a key id, so a note
//! verifier ignores the lines of the other kind (c2sp.org/signed-note: unknown keys are
//! skipped).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::checkpoint::{CheckpointError, NoteSignature, SignedNote};

/// Signature type byte of Ed25519 `cosignature/v1` in c2sp.org/signed-note.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

const SIGNER_PREFIX: &str = "PRIVATE+KEY+";

type Result<T> = std::result::Result<T, CheckpointError>;

fn check_name(name: &str) -> Result<()> {
    let bad = |c: char| c.is_whitespace() || c == '+' || c < ' ';
    if name.is_empty() || name.chars().any(bad) {
        return Err(CheckpointError::InvalidKeyName(name.to_owned()));
    }
    Ok(())
}

/// `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]` as a big-endian u32.
pub fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let d = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ALG_COSIGNATURE_V1])
        .chain_update(key.as_bytes())
        .finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The signed message of a cosignature at `time` over a checkpoint `body`.
pub fn message(time: u64, body: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

fn split(s: &str) -> Result<(&str, u32, [u8; 32])> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CheckpointError::MalformedKey("expected name+keyid+key"));
    };
    check_name(name)?;
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CheckpointError::MalformedKey("key id must be 8 hex digits"));
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| CheckpointError::MalformedKey("key id"))?;
    let raw = B64.decode(key_b64).map_err(|_| CheckpointError::MalformedKey("key is not standard base64"))?;
    let (&alg, key) = raw.split_first().ok_or(CheckpointError::MalformedKey("empty key"))?;
    if alg != ALG_COSIGNATURE_V1 {
        return Err(CheckpointError::UnsupportedAlgorithm(alg));
    }
    let key = key.try_into().map_err(|_| CheckpointError::MalformedKey("Ed25519 key must be 32 bytes"))?;
    Ok((name, id, key))
}

fn encode(name: &str, id: u32, key: &[u8; 32]) -> String {
    let mut raw = [0u8; 33];
    raw[0] = ALG_COSIGNATURE_V1;
    raw[1..].copy_from_slice(key);
    format!("{name}+{id:08x}+{}", B64.encode(raw))
}

/// A witness's public key: checks its cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self> {
        check_name(name)?;
        Ok(Self { name: name.to_owned(), key_id: key_id(name, &key), key })
    }

    /// Parses a vkey `<name>+<hex8>+<base64(0x04 ‖ key)>`.
    pub fn parse(vkey: &str) -> Result<Self> {
        let (name, id, key) = split(vkey.trim())?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| CheckpointError::MalformedKey("not an Ed25519 key"))?;
        let v = Self::new(name, key)?;
        if v.key_id != id {
            return Err(CheckpointError::KeyIdMismatch);
        }
        Ok(v)
    }

    pub fn encode(&self) -> String {
        encode(&self.name, self.key_id, self.key.as_bytes())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Whether `sig` is this witness's line (name and key id match).
    pub fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.key_id
    }

    /// The timestamp of a valid cosignature by this key over `body`, or `None`.
    pub fn verify(&self, body: &str, sig: &NoteSignature) -> Option<u64> {
        if !self.matches(sig) || sig.signature.len() != 72 {
            return None;
        }
        let (time, ed) = sig.signature.split_at(8);
        let time = u64::from_be_bytes(time.try_into().ok()?);
        if time == 0 || time > i64::MAX as u64 {
            return None;
        }
        let ed = Signature::from_slice(ed).ok()?;
        self.key.verify_strict(message(time, body).as_bytes(), &ed).ok().map(|()| time)
    }

    /// The number of distinct keys of `witnesses` that validly cosigned the note `note`.
    pub fn count_valid(witnesses: &[Self], note: &SignedNote) -> usize {
        witnesses.iter().filter(|w| note.signatures.iter().any(|s| w.verify(&note.text, s).is_some())).count()
    }
}

/// A witness's private key. Debug never shows the secret.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    pub fn new(name: &str, key: SigningKey) -> Result<Self> {
        check_name(name)?;
        Ok(Self { name: name.to_owned(), key_id: key_id(name, &key.verifying_key()), key })
    }

    pub fn generate(name: &str) -> Result<Self> {
        Self::new(name, SigningKey::generate(&mut rand::rng()))
    }

    /// Parses `PRIVATE+KEY+<name>+<hex8>+<base64(0x04 ‖ seed)>`.
    pub fn parse(skey: &str) -> Result<Self> {
        let rest = skey
            .trim()
            .strip_prefix(SIGNER_PREFIX)
            .ok_or(CheckpointError::MalformedKey("missing PRIVATE+KEY+ prefix"))?;
        let (name, id, seed) = split(rest)?;
        let s = Self::new(name, SigningKey::from_bytes(&seed))?;
        if s.key_id != id {
            return Err(CheckpointError::KeyIdMismatch);
        }
        Ok(s)
    }

    /// The secret form; handle it like the key itself.
    pub fn encode(&self) -> String {
        format!("{SIGNER_PREFIX}{}", encode(&self.name, self.key_id, self.key.as_bytes()))
    }

    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier { name: self.name.clone(), key_id: self.key_id, key: self.key.verifying_key() }
    }

    /// A cosignature at `time` (unix seconds, > 0) over the checkpoint `body`.
    pub fn cosign(&self, body: &str, time: u64) -> NoteSignature {
        let sig = self.key.sign(message(time, body).as_bytes()).to_bytes();
        let mut raw = Vec::with_capacity(72);
        raw.extend_from_slice(&time.to_be_bytes());
        raw.extend_from_slice(&sig);
        NoteSignature { name: self.name.clone(), key_id: self.key_id, signature: raw }
    }
}

/// One signature line as it appears in a note (`— <name> <base64>\n`).
pub fn signature_line(sig: &NoteSignature) -> String {
    let mut raw = Vec::with_capacity(4 + sig.signature.len());
    raw.extend_from_slice(&sig.key_id.to_be_bytes());
    raw.extend_from_slice(&sig.signature);
    format!("\u{2014} {} {}\n", sig.name, B64.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::{Checkpoint, NoteSigner, sign_checkpoint};

    #[test]
    fn keys_round_trip_and_ids_use_type_0x04() {
        let c = Cosigner::generate("witness.example/w1").unwrap();
        assert_eq!(Cosigner::parse(&c.encode()).unwrap().verifier(), c.verifier());
        let v = CosignatureVerifier::parse(&c.verifier().encode()).unwrap();
        assert_eq!(v, c.verifier());
        // The same Ed25519 key as a checkpoint signer (type 0x01) has another key id.
        let as_note = NoteSigner::new("witness.example/w1", c.key.clone()).unwrap();
        assert_ne!(as_note.key_id(), v.key_id());
        // A type 0x01 vkey is not a cosigner key.
        assert!(CosignatureVerifier::parse(&as_note.verifier().encode()).is_err());
    }

    #[test]
    fn cosignature_verifies_and_binds_time_and_body() {
        let c = Cosigner::generate("w1").unwrap();
        let body = "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let sig = c.cosign(body, 1_679_315_147);
        assert_eq!(sig.signature.len(), 72);
        assert_eq!(c.verifier().verify(body, &sig), Some(1_679_315_147));
        let mut later = sig.clone();
        later.signature[7] ^= 1;
        assert_eq!(c.verifier().verify(body, &later), None);
        assert_eq!(c.verifier().verify(&body.replace('5', "6"), &sig), None);
    }

    #[test]
    fn cosigned_checkpoint_still_verifies_with_the_log_key_alone() {
        let log = NoteSigner::generate("example.com/log").unwrap();
        let w = Cosigner::generate("w1").unwrap();
        let note =
            sign_checkpoint(&Checkpoint::new("example.com/log", 3, [7u8; 32]).unwrap(), std::slice::from_ref(&log))
                .unwrap();
        let parsed = SignedNote::parse(note.as_bytes()).unwrap();
        let line = signature_line(&w.cosign(&parsed.text, 10));
        let cosigned = format!("{note}{line}");
        let again = SignedNote::parse(cosigned.as_bytes()).unwrap();
        assert!(again.verify(&[log.verifier()]).is_ok());
        assert_eq!(CosignatureVerifier::count_valid(&[w.verifier()], &again), 1);
        assert_eq!(CosignatureVerifier::count_valid(&[Cosigner::generate("w2").unwrap().verifier()], &again), 0);
    }
}
