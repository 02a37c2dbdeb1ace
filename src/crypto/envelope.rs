//! Sealing and opening of column values with the loaded data keys ([`Keyring`]).
//!
//! Stored form (one `bytea`): `version (u32 BE) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
//! The associated data binds the value to where it lives:
//! `"custos-field-v1" ‖ len‖table ‖ len‖column ‖ len‖row_id ‖ version`, each length a
//! u32 BE. The length prefixes keep `("ab","c")` and `("a","bc")` apart; the version in the
//! AAD stops an attacker from relabelling a value to another key version.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, Nonce, Tag};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use super::keys::{Dek, Kek, KeyVersion, NONCE_LEN, TAG_LEN, random_nonce};
use super::{CryptoError, Result};

const VERSION_LEN: usize = 4;
const HEADER_LEN: usize = VERSION_LEN + NONCE_LEN;
/// Bytes a sealed value adds to its plaintext (version + nonce + tag).
pub const SEALED_OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The shortest valid sealed value (an empty plaintext).
pub const MIN_SEALED_LEN: usize = SEALED_OVERHEAD;
const FIELD_AAD_PREFIX: &[u8] = b"custos-field-v1";

/// Unwrapped data keys by version, and the version new values are sealed with.
///
/// Old versions stay loaded so values not yet rewrapped remain readable.
pub struct Keyring {
    current: KeyVersion,
    ciphers: BTreeMap<KeyVersion, Aes256Gcm>,
}

impl Keyring {
    /// A keyring holding one key, which is also the current one.
    pub fn new(current: KeyVersion, dek: &Dek) -> Self {
        let mut ciphers = BTreeMap::new();
        ciphers.insert(current, dek.cipher());
        Keyring { current, ciphers }
    }

    /// Unwraps every `(version, wrapped)` row of `encryption_keys` with `kek`; the highest
    /// version becomes current, matching "rotation creates a newer version for writes".
    /// Check the KEK with [`Kek::verify_check_value`] first for a clearer error.
    pub fn from_wrapped<'a, I>(kek: &Kek, rows: I) -> Result<Self>
    where
        I: IntoIterator<Item = (KeyVersion, &'a [u8])>,
    {
        let mut ciphers = BTreeMap::new();
        for (version, wrapped) in rows {
            let dek = kek.unwrap_dek(version, wrapped)?;
            ciphers.insert(version, dek.cipher());
        }
        let current = *ciphers.keys().next_back().ok_or(CryptoError::NoCurrentKey)?;
        Ok(Keyring { current, ciphers })
    }

    /// Adds (or replaces) a key; the current version is unchanged.
    pub fn insert(&mut self, version: KeyVersion, dek: &Dek) {
        self.ciphers.insert(version, dek.cipher());
    }

    /// Makes `version` the one new values are sealed with.
    pub fn set_current(&mut self, version: KeyVersion) -> Result<()> {
        if !self.ciphers.contains_key(&version) {
            return Err(CryptoError::NoCurrentKey);
        }
        self.current = version;
        Ok(())
    }

    /// The version [`Keyring::seal`] uses.
    pub fn current_version(&self) -> KeyVersion {
        self.current
    }

    /// Loaded versions, ascending.
    pub fn versions(&self) -> impl Iterator<Item = KeyVersion> + '_ {
        self.ciphers.keys().copied()
    }

    /// Whether `version` is loaded.
    pub fn contains(&self, version: KeyVersion) -> bool {
        self.ciphers.contains_key(&version)
    }

    /// Seals `plaintext` for `table.column` of row `row_id` with the current key and a fresh
    /// random nonce. Fails only for plaintexts beyond AES-GCM's limit (64 GiB).
    pub fn seal(&self, table: &str, column: &str, row_id: Uuid, plaintext: &[u8]) -> Result<Vec<u8>> {
        let version = self.current;
        let cipher = self.ciphers.get(&version).ok_or(CryptoError::NoCurrentKey)?;
        let nonce = random_nonce();
        let aad = field_aad(table, column, row_id, version);

        let mut out = Vec::with_capacity(SEALED_OVERHEAD + plaintext.len());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = cipher
            .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), &aad, (&mut out[HEADER_LEN..]).into())
            .map_err(|_| {
                // The buffer still holds plaintext on failure: wipe it before it is freed.
                out.zeroize();
                CryptoError::Encrypt
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// [`Keyring::seal`] for text.
    pub fn seal_str(&self, table: &str, column: &str, row_id: Uuid, text: &str) -> Result<Vec<u8>> {
        self.seal(table, column, row_id, text.as_bytes())
    }

    /// Opens a value sealed for exactly this `table.column` and `row_id`, with the key
    /// version recorded in its header. Any mismatch or altered byte gives `Integrity` (or
    /// `UnknownKeyVersion` / `Malformed` for a damaged header) and never any plaintext.
    pub fn open(&self, table: &str, column: &str, row_id: Uuid, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let SealedParts { version, nonce, ciphertext, tag } = split_sealed(stored)?;
        let cipher = self.ciphers.get(&version).ok_or(CryptoError::UnknownKeyVersion(version.get()))?;
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| CryptoError::Malformed)?;
        let tag = Tag::<Aes256Gcm>::try_from(tag).map_err(|_| CryptoError::Malformed)?;
        let aad = field_aad(table, column, row_id, version);
        // Decrypt into zeroizing storage so the plaintext is wiped wherever this ends.
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        cipher.decrypt_inout_detached(&nonce, &aad, (&mut buf[..]).into(), &tag).map_err(|_| CryptoError::Integrity)?;
        Ok(buf)
    }

    /// [`Keyring::open`] for text; `NotUtf8` if the authentic plaintext is not UTF-8.
    pub fn open_string(&self, table: &str, column: &str, row_id: Uuid, stored: &[u8]) -> Result<Zeroizing<String>> {
        let mut bytes = self.open(table, column, row_id, stored)?;
        let owned = std::mem::take(&mut *bytes);
        match String::from_utf8(owned) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(err) => {
                let mut raw = err.into_bytes();
                raw.zeroize();
                Err(CryptoError::NotUtf8)
            }
        }
    }

    /// The key version a sealed value was written with (for `keys rewrap` progress and
    /// "what is still on an old version" checks), without decrypting it.
    pub fn sealed_version(stored: &[u8]) -> Result<KeyVersion> {
        split_sealed(stored).map(|parts| parts.version)
    }

    /// Re-seals a value under the current version. `Ok(None)` if it already is on the
    /// current version (so `keys rewrap` is idempotent and resumable); the value is
    /// authenticated before anything is written back.
    pub fn rewrap(&self, table: &str, column: &str, row_id: Uuid, stored: &[u8]) -> Result<Option<Vec<u8>>> {
        if Self::sealed_version(stored)? == self.current {
            return Ok(None);
        }
        let plaintext = self.open(table, column, row_id, stored)?;
        self.seal(table, column, row_id, &plaintext).map(Some)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.ciphers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The four parts of a sealed value, borrowed from the stored bytes.
struct SealedParts<'a> {
    version: KeyVersion,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
    tag: &'a [u8],
}

/// Splits a sealed value into version, nonce, ciphertext and tag.
fn split_sealed(stored: &[u8]) -> Result<SealedParts<'_>> {
    if stored.len() < MIN_SEALED_LEN {
        return Err(CryptoError::Malformed);
    }
    let (header, rest) = stored.split_at(HEADER_LEN);
    let (version_bytes, nonce) = header.split_at(VERSION_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut be = [0u8; VERSION_LEN];
    be.copy_from_slice(version_bytes);
    let raw = u32::from_be_bytes(be);
    // Version 0 or > i32::MAX is never written, so it can only be damage.
    let version = KeyVersion::new(i64::from(raw)).map_err(|_| CryptoError::Malformed)?;
    Ok(SealedParts { version, nonce, ciphertext, tag })
}

fn field_aad(table: &str, column: &str, row_id: Uuid, version: KeyVersion) -> Vec<u8> {
    let mut aad = Vec::with_capacity(FIELD_AAD_PREFIX.len() + 3 * 4 + table.len() + column.len() + 16 + 4);
    aad.extend_from_slice(FIELD_AAD_PREFIX);
    for part in [table.as_bytes(), column.as_bytes(), row_id.as_bytes()] {
        // Table and column names are short identifiers; saturate rather than truncate in
        // the absurd case so distinct inputs still differ by their bytes.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}
