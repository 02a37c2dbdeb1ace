//! Key material and the key hierarchy: key versions, the key-encryption key ([`Kek`]), its
//! derived sub-keys and key check value, and data keys ([`Dek`]) with their wrapping.
//!
//! Derivation is HKDF-Expand (RFC 5869) with the KEK as the pseudo-random key and a single
//! 32-byte output block: `HMAC-SHA-256(KEK, info ‖ 0x01)`. The KEK is already uniform
//! random, so the Extract step adds nothing. Internal purposes and application labels use
//! disjoint `info` prefixes, so no application label can ever reproduce an internal key.

use std::fmt;

use aes_gcm::aead::{AeadInOut, Nonce, Tag};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use rand::RngExt;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::{CryptoError, Result};

/// Length in bytes of every symmetric key here (AES-256, HMAC-SHA-256 keys).
pub const KEY_LEN: usize = 32;
/// Length of the key check value returned by [`Kek::check_value`].
pub const KEK_CHECK_VALUE_LEN: usize = 32;
/// Length of a wrapped DEK: 12-byte nonce ‖ 32-byte encrypted key ‖ 16-byte tag.
pub const WRAPPED_DEK_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// `info` prefix for keys the crypto module uses itself.
const INTERNAL_INFO_PREFIX: &[u8] = b"custos/internal/";
/// `info` prefix for [`Kek::derive_subkey`]; disjoint from the internal prefix.
const APP_INFO_PREFIX: &[u8] = b"custos/app/";
const PURPOSE_DEK_WRAP: &str = "dek-wrap/v1";
const PURPOSE_KEK_CHECK: &str = "kek-check/v1";
pub(crate) const PURPOSE_BLIND_INDEX: &str = "blind-index/v1";
/// AAD prefix of a wrapped DEK; the version follows, so a wrapped key cannot be relabelled
/// as another version in `encryption_keys`.
const DEK_WRAP_AAD_PREFIX: &[u8] = b"custos-dek-v";

/// Version of a data key. Always in `1..=i32::MAX` so it fits PostgreSQL `integer` and the
/// 4-byte header of sealed values without any lossy cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyVersion(i32);

impl KeyVersion {
    /// The first version a fresh installation creates.
    pub const FIRST: KeyVersion = KeyVersion(1);

    /// Checks the range `1..=i32::MAX`.
    pub fn new(version: i64) -> Result<Self> {
        match i32::try_from(version) {
            Ok(v) if v >= 1 => Ok(KeyVersion(v)),
            _ => Err(CryptoError::InvalidKeyVersion(version)),
        }
    }

    /// The version as stored in sealed values (big-endian u32 header).
    pub fn get(self) -> u32 {
        self.0.unsigned_abs()
    }

    /// The version as stored in PostgreSQL (`integer`).
    pub fn as_i32(self) -> i32 {
        self.0
    }

    /// The version a rotation creates after this one.
    pub fn next(self) -> Result<Self> {
        Self::new(i64::from(self.0) + 1)
    }

    pub(crate) fn to_be_bytes(self) -> [u8; 4] {
        self.get().to_be_bytes()
    }
}

impl TryFrom<i32> for KeyVersion {
    type Error = CryptoError;
    fn try_from(v: i32) -> Result<Self> {
        Self::new(i64::from(v))
    }
}

impl TryFrom<u32> for KeyVersion {
    type Error = CryptoError;
    fn try_from(v: u32) -> Result<Self> {
        Self::new(i64::from(v))
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The 256-bit key-encryption key. Zeroized on drop; `Debug` never shows the bytes; no
/// `Clone`, so the key exists in exactly one place.
pub struct Kek {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl Kek {
    /// Takes ownership of 32 raw bytes. The caller's copy (if any) is theirs to wipe.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Kek { key: Zeroizing::new(bytes) }
    }

    /// Copies exactly 32 bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(Kek { key: copy_key(bytes)? })
    }

    /// Decodes the environment form: base64 (standard alphabet, padding optional,
    /// surrounding whitespace ignored because env files often end in a newline).
    pub fn from_base64(encoded: &str) -> Result<Self> {
        let engine = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let decoded = Zeroizing::new(engine.decode(encoded.trim()).map_err(|_| CryptoError::KekEncoding)?);
        Self::from_slice(&decoded)
    }

    /// A fresh random KEK (for the generated development default only).
    pub fn generate() -> Self {
        Kek { key: random_key() }
    }

    /// The padded standard base64 form accepted by [`Kek::from_base64`], for writing the
    /// development default file. Wiped when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&self.key[..]))
    }

    /// A 256-bit application sub-key for `label` (e.g. `"refresh-token-hash/v1"`), for keyed
    /// hashes outside this module. Distinct labels give independent keys; put a version in
    /// the label so a future change of use gets a new key.
    pub fn derive_subkey(&self, label: &str) -> Zeroizing<[u8; KEY_LEN]> {
        self.expand(APP_INFO_PREFIX, label)
    }

    /// Sub-key for one of this module's own purposes.
    pub(crate) fn derive_internal(&self, purpose: &str) -> Zeroizing<[u8; KEY_LEN]> {
        self.expand(INTERNAL_INFO_PREFIX, purpose)
    }

    /// The key check value to store beside the wrapped DEKs. It is a PRF output of the KEK,
    /// so publishing it reveals nothing about the KEK or any other sub-key.
    pub fn check_value(&self) -> [u8; KEK_CHECK_VALUE_LEN] {
        *self.derive_internal(PURPOSE_KEK_CHECK)
    }

    /// Start-up check: `Err(WrongKek)` unless `stored` is this KEK's check value. The
    /// comparison is constant-time (HMAC verification).
    pub fn verify_check_value(&self, stored: &[u8]) -> Result<()> {
        let mac = self.info_mac(INTERNAL_INFO_PREFIX, PURPOSE_KEK_CHECK);
        mac.verify_slice(stored).map_err(|_| CryptoError::WrongKek)
    }

    /// Wraps a DEK for storage in `encryption_keys`: nonce ‖ ciphertext ‖ tag
    /// ([`WRAPPED_DEK_LEN`] bytes), AAD `"custos-dek-v" ‖ version (u32 BE)`.
    pub fn wrap_dek(&self, version: KeyVersion, dek: &Dek) -> Result<Vec<u8>> {
        let cipher = self.wrapping_cipher();
        let nonce = random_nonce();
        let mut out = Vec::with_capacity(WRAPPED_DEK_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&dek.key[..]);
        let tag = cipher
            .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), &dek_aad(version), (&mut out[NONCE_LEN..]).into())
            .map_err(|_| {
                // Never leave the raw DEK behind in a buffer we are about to drop.
                out.zeroize();
                CryptoError::Encrypt
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Unwraps a DEK stored under `version`. Fails with `DekUnwrap` for a wrong KEK, a
    /// wrong version, or any altered byte.
    pub fn unwrap_dek(&self, version: KeyVersion, wrapped: &[u8]) -> Result<Dek> {
        let fail = CryptoError::DekUnwrap(version.get());
        if wrapped.len() != WRAPPED_DEK_LEN {
            return Err(fail);
        }
        let (nonce, rest) = wrapped.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(KEY_LEN);
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| fail.clone())?;
        let tag = Tag::<Aes256Gcm>::try_from(tag).map_err(|_| fail.clone())?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(ciphertext);
        self.wrapping_cipher()
            .decrypt_inout_detached(&nonce, &dek_aad(version), (&mut key[..]).into(), &tag)
            .map_err(|_| fail)?;
        Ok(Dek { key })
    }

    fn wrapping_cipher(&self) -> Aes256Gcm {
        let key = self.derive_internal(PURPOSE_DEK_WRAP);
        Aes256Gcm::new(&(*key).into())
    }

    /// HMAC keyed with the KEK over `prefix ‖ label ‖ 0x01`, not yet finalized.
    fn info_mac(&self, prefix: &[u8], label: &str) -> HmacSha256 {
        let mut mac = hmac_with_key(&self.key);
        mac.update(prefix);
        mac.update(label.as_bytes());
        mac.update(&[0x01]);
        mac
    }

    fn expand(&self, prefix: &[u8], label: &str) -> Zeroizing<[u8; KEY_LEN]> {
        finalize_key(self.info_mac(prefix, label))
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

/// A 256-bit data-encryption key. Zeroized on drop; `Debug` redacted; not `Clone`.
pub struct Dek {
    pub(crate) key: Zeroizing<[u8; KEY_LEN]>,
}

impl Dek {
    /// A fresh random DEK (what `custos keys rotate` creates).
    pub fn generate() -> Self {
        Dek { key: random_key() }
    }

    /// Takes ownership of 32 raw bytes (tests, imports).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Dek { key: Zeroizing::new(bytes) }
    }

    pub(crate) fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.key).into())
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

/// HMAC-SHA-256 keyed with a 32-byte key. `Hmac::new_from_slice` returns a `Result` although
/// it cannot fail; to stay free of `unwrap` we zero-pad the key to the 64-byte block size
/// ourselves, which RFC 2104 defines as the very same MAC, and use the infallible `new`.
pub(crate) fn hmac_with_key(key: &[u8; KEY_LEN]) -> HmacSha256 {
    let mut block = Zeroizing::new([0u8; 64]);
    block[..KEY_LEN].copy_from_slice(key);
    <HmacSha256 as KeyInit>::new(&(*block).into())
}

pub(crate) fn finalize_key(mac: HmacSha256) -> Zeroizing<[u8; KEY_LEN]> {
    let mut tag = mac.finalize().into_bytes();
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(&tag);
    tag[..].zeroize();
    out
}

fn copy_key(bytes: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::InvalidKeyLength { expected: KEY_LEN, actual: bytes.len() });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(bytes);
    Ok(key)
}

/// Keys come from the thread-local CSPRNG (ChaCha, seeded and periodically reseeded
/// from the OS), written straight into zeroizing storage.
fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rng().fill(&mut key[..]);
    key
}

/// A fresh 96-bit nonce. Random nonces are safe for far more than 2^32 messages per key
/// before the collision bound matters; rotation keeps each DEK's count well below that.
pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill(&mut nonce[..]);
    nonce
}

fn dek_aad(version: KeyVersion) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DEK_WRAP_AAD_PREFIX.len() + 4);
    aad.extend_from_slice(DEK_WRAP_AAD_PREFIX);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}
