//! Bearer credentials: opaque 256-bit tokens (refresh tokens, MFA tokens, invites) stored
//! only as SHA-256 hashes and a constant-time comparison helper. The JWT access tokens are
//! key material and live in `crate::crypto::jwt` (re-exported here).

pub use crate::crypto::jwt::*;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Random bytes in an opaque token.
pub const OPAQUE_TOKEN_BYTES: usize = 32;

/// A new opaque token: the base64url (no padding) text for the client, and the SHA-256 of
/// its 32 raw bytes, the only thing to store.
pub fn new_opaque_token() -> (SecretString, [u8; 32]) {
    let mut raw = Zeroizing::new([0u8; OPAQUE_TOKEN_BYTES]);
    rand::rng().fill_bytes(raw.as_mut());
    let text = SecretString::from(URL_SAFE_NO_PAD.encode(raw.as_ref()));
    (text, Sha256::digest(raw.as_ref()).into())
}

/// The stored hash of a presented token; `None` unless it is base64url of exactly 32 bytes.
pub fn hash_opaque_token(token: &str) -> Option<[u8; 32]> {
    let raw = Zeroizing::new(URL_SAFE_NO_PAD.decode(token.trim()).ok()?);
    (raw.len() == OPAQUE_TOKEN_BYTES).then(|| Sha256::digest(raw.as_slice()).into())
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}
