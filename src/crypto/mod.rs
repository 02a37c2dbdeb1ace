//! Field-level encryption for PHI: the key hierarchy (KEK → wrapped DEKs), sealing and opening
//! of column values bound to their table/column/row, and keyed blind indexes for equality
//! look-ups. Everything here is pure: no I/O, no database, no async.
//!
//! Hierarchy:
//! - [`Kek`]: 256-bit key-encryption key from the environment. It is only ever used as an
//!   HMAC key to derive purpose-specific sub-keys (HKDF-Expand, RFC 5869), so the same
//!   bytes are never fed to two different algorithms.
//! - Its sub-keys: the DEK-wrapping key, the key check value, the blind-index key, and any
//!   application sub-key from [`Kek::derive_subkey`].
//! - [`Dek`]: random 256-bit data keys, stored wrapped (AES-256-GCM) in `encryption_keys`,
//!   loaded into a [`Keyring`] that seals and opens field values.

mod blind_index;
mod envelope;
/// Loading and creating the data keys in `encryption_keys`.
pub mod jwt;
mod keys;
pub mod store;
#[cfg(test)]
mod tests;

pub use blind_index::{BlindIndexKey, BlindIndexKind};
pub use envelope::{Keyring, MIN_SEALED_LEN, SEALED_OVERHEAD};
pub use keys::{Dek, KEK_CHECK_VALUE_LEN, KEY_LEN, Kek, KeyVersion, WRAPPED_DEK_LEN};

/// Errors of the crypto module. None of them carries key material or plaintext, so they
/// can be logged and audited as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The configured KEK does not match the key check value stored with the keys: the
    /// server was started with the wrong `CUSTOS_KEK` and must refuse to run, since every
    /// unwrap would fail (or, worse, new DEKs would be wrapped under a key nobody has).
    #[error("the key-encryption key does not match the stored key check value (wrong KEK configured?)")]
    WrongKek,
    /// Key material had the wrong length (a KEK or DEK must be exactly 32 bytes).
    #[error("invalid key length: expected {expected} bytes, got {actual}")]
    InvalidKeyLength {
        /// Required length in bytes.
        expected: usize,
        /// Length that was supplied.
        actual: usize,
    },
    /// The KEK string was not valid base64 (standard alphabet, padding optional).
    #[error("the key-encryption key is not valid base64")]
    KekEncoding,
    /// A key version outside `1..=i32::MAX` (versions must fit PostgreSQL `integer`).
    #[error("key version {0} is out of range (1..=2147483647)")]
    InvalidKeyVersion(i64),
    /// A sealed value names a key version the keyring does not hold.
    #[error("no data key with version {0} is loaded")]
    UnknownKeyVersion(u32),
    /// A wrapped DEK failed to unwrap: wrong KEK, wrong version, or corrupted row.
    #[error("data key version {0} could not be unwrapped")]
    DekUnwrap(u32),
    /// The stored bytes are too short or otherwise not in the sealed-value format.
    #[error("sealed value is malformed")]
    Malformed,
    /// Authentication failed: the ciphertext was altered, or it was moved to another
    /// table, column, row or key version. No plaintext is released.
    #[error("sealed value failed its integrity check")]
    Integrity,
    /// The value authenticated but is not UTF-8, although text was expected.
    #[error("sealed value is not valid UTF-8 text")]
    NotUtf8,
    /// Encryption refused the input (only possible for plaintexts beyond AES-GCM's 64 GiB
    /// limit); kept as an error instead of a panic.
    #[error("encryption failed")]
    Encrypt,
    /// The keyring was asked to use a current version it does not hold, or was built
    /// from no keys at all.
    #[error("the keyring holds no data key for the requested current version")]
    NoCurrentKey,
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, CryptoError>;
