//! Passwords: the NIST SP 800-63B policy check, Argon2id hashing into PHC strings,
//! verification of Argon2 and legacy bcrypt hashes (with a re-hash signal), and a dummy
//! verification that makes unknown accounts cost the same time as known ones.
//!
//! Every password is NFKC-normalized (SP 800-63B §3.1.1.2) before it is counted, checked
//! or hashed, so the same password typed with composed or decomposed characters matches.
//!
//! **Blocking:** [`PasswordPolicy::check`], [`hash_password`], [`verify_password`],
//! [`dummy_verify`] and the [`Argon2Params`] methods burn tens of milliseconds of CPU
//! (and ~19 MiB of RAM for Argon2). Async callers must run them in
//! `tokio::task::spawn_blocking` / `actix_web::web::block`, never on the executor.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// Minimum length (Unicode code points after NFKC) for roles where MFA is optional (patients).
pub const MIN_LEN_MFA_OPTIONAL: usize = 15;
/// Minimum length for roles where MFA is mandatory (clinicians, admins, auditors).
pub const MIN_LEN_MFA_MANDATORY: usize = 12;
/// Maximum length in Unicode code points after NFKC.
pub const MAX_LEN: usize = 128;
/// Lowest accepted zxcvbn score (0–4).
pub const MIN_STRENGTH_SCORE: u8 = 3;
/// Inputs longer than this many bytes are refused by verification without hashing
/// (generous: 128 code points of up to 4 bytes, plus NFKC expansion and legacy passwords).
pub const MAX_VERIFY_BYTES: usize = 2048;

/// Why a password was refused by [`PasswordPolicy::check`]. Messages never echo the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyViolation {
    /// Fewer than `min` characters.
    TooShort {
        /// The minimum for this account.
        min: usize,
    },
    /// More than `max` characters.
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// The strength estimator (zxcvbn) scored it below [`MIN_STRENGTH_SCORE`].
    TooWeak {
        /// A generic hint from the estimator ("This is a very common password."), if any.
        hint: Option<String>,
    },
    /// It contains the local part of the account's email address.
    ContainsEmail,
}

impl PolicyViolation {
    /// Stable snake_case code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "password_too_short",
            Self::TooLong { .. } => "password_too_long",
            Self::TooWeak { .. } => "password_too_weak",
            Self::ContainsEmail => "password_contains_email",
        }
    }

    /// Human-readable explanation.
    pub fn message(&self) -> String {
        match self {
            Self::TooShort { min } => format!("Password must be at least {min} characters long."),
            Self::TooLong { max } => format!("Password must be at most {max} characters long."),
            Self::TooWeak { hint: Some(h) } => {
                format!("Password is too easy to guess. {h} Try a longer passphrase of unrelated words.")
            }
            Self::TooWeak { hint: None } => {
                "Password is too easy to guess. Try a longer passphrase of unrelated words.".into()
            }
            Self::ContainsEmail => "Password must not contain your email address.".into(),
        }
    }
}

impl std::fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl Serialize for PolicyViolation {
    /// Serializes as `{"code": "...", "message": "..."}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("PolicyViolation", 2)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.message())?;
        st.end()
    }
}

/// Length and strength rules for new passwords (no composition rules, no expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in code points after NFKC.
    pub min_len: usize,
    /// Maximum length in code points after NFKC.
    pub max_len: usize,
}

impl PasswordPolicy {
    /// Policy for roles where MFA is optional (patients): at least 15 characters.
    pub const MFA_OPTIONAL: Self = Self { min_len: MIN_LEN_MFA_OPTIONAL, max_len: MAX_LEN };
    /// Policy for roles where MFA is mandatory (staff): at least 12 characters.
    pub const MFA_MANDATORY: Self = Self { min_len: MIN_LEN_MFA_MANDATORY, max_len: MAX_LEN };

    /// The policy for an account, given whether its role must use MFA.
    pub const fn for_role(mfa_mandatory: bool) -> Self {
        if mfa_mandatory { Self::MFA_MANDATORY } else { Self::MFA_OPTIONAL }
    }

    /// Checks a candidate password and returns every rule it breaks.
    ///
    /// `email_local_part` is the part of the email before `@`; `user_inputs` are further
    /// account words (display name, organisation) the estimator should treat as guessable.
    /// Blocking CPU work (zxcvbn): run off the async executor.
    pub fn check(
        &self,
        password: &SecretString,
        email_local_part: &str,
        user_inputs: &[&str],
    ) -> Result<(), Vec<PolicyViolation>> {
        let pw = normalize(password);
        let len = pw.chars().count();
        let mut violations = Vec::new();
        if len < self.min_len {
            violations.push(PolicyViolation::TooShort { min: self.min_len });
        }
        if len > self.max_len {
            violations.push(PolicyViolation::TooLong { max: self.max_len });
        }
        let local: String = email_local_part.nfkc().collect::<String>().to_lowercase();
        if contains_local_part(&pw, &local) {
            violations.push(PolicyViolation::ContainsEmail);
        }
        if len > 0 {
            let mut inputs: Vec<&str> = user_inputs.to_vec();
            inputs.push(&local);
            let estimate = zxcvbn::zxcvbn(&pw, &inputs);
            if u8::from(estimate.score()) < MIN_STRENGTH_SCORE {
                let hint = estimate.feedback().and_then(zxcvbn::feedback::Feedback::warning).map(|w| w.to_string());
                violations.push(PolicyViolation::TooWeak { hint });
            }
        } else {
            violations.push(PolicyViolation::TooWeak { hint: None });
        }
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }
}

/// True when `local` (already NFKC + lowercase) is ≥ 3 chars and occurs in the password,
/// case-insensitively. A `+tag` suffix is also tried without the tag.
fn contains_local_part(pw: &str, local: &str) -> bool {
    let lower_pw = Zeroizing::new(pw.to_lowercase());
    let base = local.split('+').next().unwrap_or(local);
    [local, base].iter().any(|cand| cand.chars().count() >= 3 && lower_pw.contains(*cand))
}

/// NFKC-normalizes a password into a zeroizing buffer.
fn normalize(password: &SecretString) -> Zeroizing<String> {
    Zeroizing::new(password.expose_secret().nfkc().collect())
}

/// Errors of hashing and verification. Callers map every variant to the same generic 401.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password does not match the stored hash (or the dummy hash was used).
    #[error("password does not match")]
    Mismatch,
    /// The stored hash could not be parsed.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// The stored hash is of a scheme this module does not verify.
    #[error("stored password hash uses an unsupported scheme")]
    UnsupportedScheme,
    /// Argon2 parameters are outside the allowed range.
    #[error("invalid Argon2 parameters: {0}")]
    InvalidParams(String),
    /// Argon2 or the system RNG failed while hashing.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Outcome of a successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The hash is legacy (bcrypt) or below the current Argon2 parameters: store a fresh
    /// [`hash_password`] of the same password now.
    pub needs_rehash: bool,
}

pub use crate::config::Argon2Params;

/// Hashing with the configured cost (the parameters are settings: `crate::config`).
impl Argon2Params {
    fn argon2(&self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)
            .map_err(|e| PasswordError::InvalidParams(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes (NFKC first) with a fresh random salt into a PHC string. Blocking.
    pub fn hash_password(&self, password: &SecretString) -> Result<String, PasswordError> {
        let pw = normalize(password);
        let hash = self.argon2()?.hash_password(pw.as_bytes()).map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(hash.to_string())
    }

    /// Verifies against an Argon2 PHC string or a legacy bcrypt (`$2a$`/`$2b$`/`$2y$`)
    /// hash. `needs_rehash` is set for bcrypt and for Argon2 hashes weaker than `self`.
    /// Blocking.
    pub fn verify_password(&self, password: &SecretString, stored: &str) -> Result<Verified, PasswordError> {
        if password.expose_secret().len() > MAX_VERIFY_BYTES {
            return Err(PasswordError::Mismatch);
        }
        if is_bcrypt(stored) {
            return verify_bcrypt(password, stored);
        }
        let parsed = PasswordHash::new(stored).map_err(|_| PasswordError::MalformedHash)?;
        let alg = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|_| PasswordError::UnsupportedScheme)?;
        let stored_params = Params::try_from(&parsed).map_err(|_| PasswordError::MalformedHash)?;
        let pw = normalize(password);
        // Verifies with the hash's own algorithm, version and parameters.
        Argon2::default().verify_password(pw.as_bytes(), &parsed).map_err(|e| match e {
            argon2::password_hash::Error::PasswordInvalid => PasswordError::Mismatch,
            _ => PasswordError::MalformedHash,
        })?;
        let version_ok = parsed.version.is_none_or(|v| v == u32::from(Version::V0x13));
        let needs_rehash = alg != Algorithm::Argon2id
            || !version_ok
            || stored_params.m_cost() < self.m_cost_kib
            || stored_params.t_cost() < self.t_cost
            || stored_params.p_cost() < self.p_cost
            || stored_params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN) < 32;
        Ok(Verified { needs_rehash })
    }

    /// Spends the same Argon2 work as a real verification and always fails: call it when
    /// the account does not exist so the response time does not reveal that. Blocking.
    pub fn dummy_verify(&self, password: &SecretString) -> Result<Verified, PasswordError> {
        // Oversized input is refused without hashing by `verify_password` too: same cost.
        if password.expose_secret().len() > MAX_VERIFY_BYTES {
            return Err(PasswordError::Mismatch);
        }
        let pw = normalize(password);
        let mut out = Zeroizing::new([0u8; 32]);
        let argon = self.argon2()?;
        // Result deliberately ignored: only the elapsed time matters.
        let _ = argon.hash_password_into(pw.as_bytes(), b"custos-dummy-salt", out.as_mut());
        Err(PasswordError::Mismatch)
    }
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p))
}

/// Legacy bcrypt: the importing system hashed the raw bytes, so try them first and the NFKC
/// form second (only if different). bcrypt's 72-byte truncation is kept for compatibility.
fn verify_bcrypt(password: &SecretString, stored: &str) -> Result<Verified, PasswordError> {
    let raw = password.expose_secret();
    let ok = bcrypt::verify(raw, stored).map_err(|_| PasswordError::MalformedHash)?;
    let ok = ok || {
        let pw = normalize(password);
        pw.as_str() != raw && bcrypt::verify(pw.as_bytes(), stored).unwrap_or(false)
    };
    if ok { Ok(Verified { needs_rehash: true }) } else { Err(PasswordError::Mismatch) }
}

/// [`Argon2Params::hash_password`] with the default parameters. Blocking.
pub fn hash_password(password: &SecretString) -> Result<String, PasswordError> {
    Argon2Params::default().hash_password(password)
}

/// [`Argon2Params::verify_password`] with the default parameters. Blocking.
pub fn verify_password(password: &SecretString, stored: &str) -> Result<Verified, PasswordError> {
    Argon2Params::default().verify_password(password, stored)
}

/// [`Argon2Params::dummy_verify`] with the default parameters; always `Err(Mismatch)`.
/// Blocking.
pub fn dummy_verify(password: &SecretString) -> Result<Verified, PasswordError> {
    Argon2Params::default().dummy_verify(password)
}
