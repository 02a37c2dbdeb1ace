//! Second factor: RFC 6238 TOTP (SHA-1, 6 digits, 30 s, issuer "Custos", account = email)
//! with a ±1 step window and replay rejection, and single-use recovery codes (80 random
//! bits, shown as `xxxx-xxxx-xxxx-xxxx`, stored as HMAC-SHA-256 under a server key).
//!
//! The caller persists the secret encrypted (crypto module), the last accepted step per user
//! (and updates it in the same transaction that accepts a code), and recovery-code hashes.

use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use secrecy::SecretString;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

/// Issuer shown in authenticator apps.
pub const ISSUER: &str = "Custos";
/// Code length.
pub const DIGITS: u8 = 6;
/// Step length in seconds.
pub const STEP_SECONDS: u32 = 30;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: u16 = 1;
/// Number of recovery codes issued at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Random bits per recovery code.
pub const RECOVERY_CODE_BITS: usize = 80;
/// Characters of a recovery code (without dashes): 16 × 5 bits.
const RECOVERY_CODE_CHARS: usize = RECOVERY_CODE_BITS / 5;
/// Crockford base32 (no i, l, o, u): unambiguous when read aloud or copied by hand.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Errors of building TOTP material.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The secret is not valid base32 or is shorter than 128 bits.
    #[error("invalid TOTP secret")]
    InvalidSecret,
    /// The account name (email) cannot be put in an otpauth URI (e.g. contains `:`).
    #[error("account name cannot be used in an otpauth URI")]
    InvalidAccountName,
}

/// A TOTP shared secret (160 random bits when generated). Zeroized on drop; `Debug` redacted.
#[derive(Clone)]
pub struct TotpSecret(Secret);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

impl TotpSecret {
    /// Wraps decrypted secret bytes (at least 16).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if bytes.len() < 16 {
            return Err(TotpError::InvalidSecret);
        }
        Ok(Self(Secret::from(bytes)))
    }

    /// Parses an unpadded RFC 4648 base32 secret.
    pub fn from_base32(b32: &str) -> Result<Self, TotpError> {
        let s = Secret::try_from_base32(b32).map_err(|_| TotpError::InvalidSecret)?;
        Self::from_bytes(s.as_bytes())
    }

    /// Raw bytes, to be encrypted before storage.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn totp(&self, account: &str) -> Result<Totp, TotpError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW_STEPS)
            .with_step_duration(u64::from(STEP_SECONDS))
            .with_secret(self.0.clone())
            .with_issuer(Some(ISSUER))
            .with_account_name(account)
            .build()
            .map_err(|e| match e {
                totp_rs::TotpError::SecretTooShort { .. } => TotpError::InvalidSecret,
                _ => TotpError::InvalidAccountName,
            })
    }
}

/// A fresh 160-bit secret from the OS-seeded CSPRNG.
pub fn new_secret() -> TotpSecret {
    TotpSecret(Secret::generate())
}

/// The secret as unpadded base32, for manual entry into an authenticator app.
pub fn secret_base32(secret: &TotpSecret) -> SecretString {
    SecretString::from(secret.0.to_base32())
}

/// `otpauth://totp/Custos:{email}?secret=…&issuer=Custos` (SHA-1, 6 digits, 30 s are the
/// defaults and left implicit). Contains the secret, hence `SecretString`.
pub fn otpauth_uri(secret: &TotpSecret, email: &str) -> Result<SecretString, TotpError> {
    let uri = secret.totp(email)?.to_url().map_err(|_| TotpError::InvalidAccountName)?;
    Ok(SecretString::from(uri))
}

/// The step number containing `now_unix`.
pub fn step_at(now_unix: i64) -> i64 {
    now_unix.div_euclid(i64::from(STEP_SECONDS))
}

/// The code for `step` (what an authenticator app shows); `None` for a negative step or an
/// unusable secret. Meant for tests and tooling.
pub fn code_for_step(secret: &TotpSecret, step: i64) -> Option<Zeroizing<String>> {
    let t = u64::try_from(step.checked_mul(i64::from(STEP_SECONDS))?).ok()?;
    let totp = secret.totp("").ok()?;
    Some(Zeroizing::new(totp.generate(t).to_string()))
}

/// True when `code` has the shape of a TOTP code (6 digits, spaces ignored), as opposed to
/// a recovery code.
pub fn is_totp_format(code: &str) -> bool {
    let mut digits = code.chars().filter(|c| !c.is_whitespace());
    digits.clone().count() == usize::from(DIGITS) && digits.all(|c| c.is_ascii_digit())
}

/// Checks `code` against the steps `now ± 1` and returns the accepted step.
///
/// Returns `None` for a wrong code, and for a correct code whose step is not newer than
/// `last_accepted_step` (replay). Store the returned step as the new `last_accepted_step`
/// in the same transaction that accepts the login, with a guarded update so two concurrent
/// requests cannot both win (`… SET last_step = $1 WHERE user_id = $2 AND (last_step IS
/// NULL OR last_step < $1)`, and fail unless one row changed). Codes are compared in
/// constant time.
pub fn verify(secret: &TotpSecret, code: &str, now_unix: i64, last_accepted_step: Option<i64>) -> Option<i64> {
    if !is_totp_format(code) {
        return None;
    }
    let given: Zeroizing<String> = Zeroizing::new(code.chars().filter(|c| !c.is_whitespace()).collect());
    let current = step_at(now_unix);
    let mut accepted = None;
    let skew = i64::from(SKEW_STEPS);
    for step in (current - skew)..=(current + skew) {
        let Some(expected) = code_for_step(secret, step) else {
            continue;
        };
        let matches: bool = expected.as_bytes().ct_eq(given.as_bytes()).into();
        let fresh = last_accepted_step.is_none_or(|last| step > last);
        if matches && fresh {
            accepted = Some(step);
        }
    }
    accepted
}

/// Generates `n` distinct recovery codes of [`RECOVERY_CODE_BITS`] random bits each,
/// formatted `xxxx-xxxx-xxxx-xxxx` in lowercase Crockford base32. Show them once; store
/// only [`hash_recovery_code`] of each.
pub fn generate_recovery_codes(n: usize) -> Vec<SecretString> {
    let mut rng = rand::rng();
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    while codes.len() < n {
        let mut raw = Zeroizing::new([0u8; RECOVERY_CODE_CHARS]);
        rng.fill_bytes(raw.as_mut());
        // 256 is a multiple of 32, so masking to 5 bits keeps each character uniform.
        let mut s = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS + 3));
        for (i, b) in raw.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push(char::from(CROCKFORD[usize::from(b & 0x1f)]));
        }
        if seen.insert(hash_for_uniqueness(&s)) {
            codes.push(SecretString::from(s.as_str()));
        }
    }
    codes
}

fn hash_for_uniqueness(code: &str) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(code.as_bytes()).into()
}

/// Canonical form of a typed recovery code: lowercase, dashes and whitespace removed,
/// `i`/`l` read as `1` and `o` as `0`. `None` unless exactly 16 Crockford characters remain.
pub fn normalize_recovery_code(input: &str) -> Option<Zeroizing<String>> {
    let s = clean_recovery_input(input);
    let valid = s.len() == RECOVERY_CODE_CHARS && s.bytes().all(|b| CROCKFORD.contains(&b));
    valid.then_some(s)
}

fn clean_recovery_input(input: &str) -> Zeroizing<String> {
    Zeroizing::new(
        input
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                other => other,
            })
            .collect(),
    )
}

/// HMAC-SHA-256 of the normalized code under a 32-byte server key. Input that is not a
/// well-formed code is hashed in its cleaned form, which can never equal a stored hash.
/// Compare stored hashes with [`crate::auth::tokens::ct_eq`] or look them up by value.
pub fn hash_recovery_code(key: &[u8; 32], code: &str) -> [u8; 32] {
    let normalized = normalize_recovery_code(code).unwrap_or_else(|| clean_recovery_input(code));
    // HMAC zero-pads keys shorter than the 64-byte SHA-256 block (RFC 2104), so the
    // fixed-size constructor over a padded copy equals `new_from_slice(key)`, infallibly.
    let mut block = Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
    mac.update(normalized.as_bytes());
    mac.finalize().into_bytes().into()
}
