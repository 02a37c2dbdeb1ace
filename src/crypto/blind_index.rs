//! Blind indexes: keyed HMAC-SHA-256 digests of normalized identifiers (MRN, email) so the
//! database can answer equality look-ups (`GET /v1/patients?mrn=…`) without holding the
//! plaintext, and without the digest being computable by anyone lacking the KEK.
//!
//! Input encoding: `len‖kind ‖ len‖scope ‖ len‖value` (u32 BE lengths), so kinds cannot be
//! confused (an MRN never matches an email with the same text) and an unscoped index
//! (empty scope) never equals a scoped one. Normalization is the caller's job (the domain
//! types' `as_str()`/`normalized()`), because only they know what "equal" means.

use std::fmt;

use hmac::Mac;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::keys::{KEY_LEN, Kek, PURPOSE_BLIND_INDEX, hmac_with_key};

/// The identifiers Custos indexes; [`BlindIndexKind::label`] is the `kind` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlindIndexKind {
    /// Medical record number (normalized upper case).
    Mrn,
    /// Email address (normalized lower case).
    Email,
}

impl BlindIndexKind {
    /// The domain-separation label fed to the HMAC.
    pub fn label(self) -> &'static str {
        match self {
            BlindIndexKind::Mrn => "mrn",
            BlindIndexKind::Email => "email",
        }
    }
}

/// The blind-index key, derived from the KEK for this purpose only. Zeroized on drop;
/// `Debug` redacted. Cloned only where another thread needs it (a clone is zeroized too).
#[derive(Clone)]
pub struct BlindIndexKey {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl BlindIndexKey {
    /// Derives the key from the KEK (`HKDF-Expand(KEK, "custos/internal/blind-index/v1")`).
    /// The index therefore survives DEK rotation but changes with the KEK.
    pub fn derive(kek: &Kek) -> Self {
        BlindIndexKey { key: kek.derive_internal(PURPOSE_BLIND_INDEX) }
    }

    /// `HMAC-SHA-256(key, kind, value)` for a value that is unique across the installation.
    pub fn blind_index(&self, kind: &str, normalized_value: &str) -> [u8; 32] {
        self.compute(kind, &[], normalized_value)
    }

    /// Like [`BlindIndexKey::blind_index`] but bound to a scope (an organization id), so
    /// the same MRN or email in two organizations gives unrelated digests and cannot be
    /// used to link patients across tenants.
    pub fn blind_index_scoped(&self, kind: &str, scope: Uuid, normalized_value: &str) -> [u8; 32] {
        self.compute(kind, scope.as_bytes(), normalized_value)
    }

    /// Typed convenience for [`BlindIndexKey::blind_index`].
    pub fn index(&self, kind: BlindIndexKind, normalized_value: &str) -> [u8; 32] {
        self.blind_index(kind.label(), normalized_value)
    }

    fn compute(&self, kind: &str, scope: &[u8], value: &str) -> [u8; 32] {
        let mut mac = hmac_with_key(&self.key);
        for part in [kind.as_bytes(), scope, value.as_bytes()] {
            // Saturating only matters for > 4 GiB inputs, which never reach this function.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            mac.update(&len.to_be_bytes());
            mac.update(part);
        }
        // The digest is stored in the database; it is not secret, so no zeroizing needed.
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(<redacted>)")
    }
}
