//! Ed25519 (`EdDSA`) JWT access tokens with a `kid` header, key rotation and strict
//! validation: key material, so it sits with the other keys below the services (the shared
//! request state holds a [`JwtKeys`]); issuing and checking sessions is `auth`'s.
//!
//! The JWT signing key is a 32-byte Ed25519 seed (its env var holds the seed in base64).
//! `validate` accepts only `EdDSA` tokens whose `kid` names a configured key, and checks
//! signature, `exp` (≤ [`CLOCK_SKEW_SECS`] leeway), `iat`, `iss` and `aud`. Checking that
//! the session `sid` is still live is the caller's job (one indexed query).
//!
//! A client sends the same access token with every request until it expires, so `validate`
//! remembers the tokens whose signature verified ([`VERIFIED_CACHE`] of them at most, by
//! SHA-256 of the whole token, never the token itself): a repeat costs a hash instead of an
//! Ed25519 verification. Only the signature and the fixed claims (`alg`, `kid`, `iss`, `aud`)
//! are remembered; `exp` and `iat` are checked against the clock on every call. Keys are only
//! ever added at run time, never withdrawn, so a remembered verification cannot outlive its key.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 5;

/// Errors of key set-up, issuing and validation. Every validation error maps to 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The configured key material is unusable (bad base64, wrong length, bad point).
    #[error("invalid JWT key material: {0}")]
    InvalidKey(&'static str),
    /// Signing failed.
    #[error("could not sign token: {0}")]
    Signing(String),
    /// Not a well-formed JWT, or claims missing or of the wrong type.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not `EdDSA`.
    #[error("token algorithm not accepted")]
    UnsupportedAlgorithm,
    /// No `kid`, or a `kid` naming no configured key.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `iat` lies in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not ours.
    #[error("token issuer not accepted")]
    WrongIssuer,
    /// `aud` is not ours.
    #[error("token audience not accepted")]
    WrongAudience,
    /// `exp − iat` exceeds the longest lifetime this server issues (a token minted with a
    /// leaked key to last a year is refused even while its signature holds).
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong,
}

/// Access-token claims. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Session id (checked against the sessions table on every request).
    pub sid: Uuid,
    /// Organization id.
    pub org: Uuid,
    /// Role name (`patient`, `clinician`, `admin`, `auditor`).
    pub role: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Unique token id.
    pub jti: Uuid,
}

/// `kid` of a public key: hex of the first 8 bytes of SHA-256(public key).
pub fn kid_for(public_key: &[u8; 32]) -> String {
    Sha256::digest(public_key).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A fresh random seed in base64, e.g. for a generated development key file.
pub fn generate_seed_base64() -> SecretString {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(seed.as_mut());
    SecretString::from(STANDARD.encode(seed.as_ref()))
}

/// Signing key plus the set of accepted verification keys, with the expected `iss`/`aud`.
pub struct JwtKeys {
    encoding: EncodingKey,
    kid: String,
    public_key: [u8; 32],
    decoding: HashMap<String, DecodingKey>,
    issuer: String,
    audience: String,
    /// Tokens that verified, by SHA-256 of the token; at most `remember` of them.
    verified: Mutex<HashMap<[u8; 32], Claims>>,
    remember: usize,
    /// Longest accepted `exp − iat`, in seconds (plus [`CLOCK_SKEW_SECS`]); `None`: no bound.
    max_lifetime: Option<i64>,
}

/// At most this many verified tokens are remembered (a few MB): about one per live session.
/// When full, the expired ones are dropped, and if that is not enough, all of them.
pub const VERIFIED_CACHE: usize = 20_000;

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("kid", &self.kid)
            .field("verification_kids", &self.decoding.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from a 32-byte Ed25519 seed; tokens carry `iss = issuer`, `aud = audience`.
    pub fn from_seed(
        seed: &[u8; 32],
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, TokenError> {
        let signing = SigningKey::from_bytes(seed);
        // aws-lc-rs wants PKCS#8 DER for signing and the raw 32-byte public key for verifying.
        let der = signing.to_pkcs8_der().map_err(|_| TokenError::InvalidKey("cannot encode seed as PKCS#8"))?;
        let public_key = signing.verifying_key().to_bytes();
        let kid = kid_for(&public_key);
        let mut decoding = HashMap::new();
        decoding.insert(kid.clone(), DecodingKey::from_ed_der(&public_key));
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            kid,
            public_key,
            decoding,
            issuer: issuer.into(),
            audience: audience.into(),
            verified: Mutex::new(HashMap::new()),
            remember: VERIFIED_CACHE,
            max_lifetime: None,
        })
    }

    /// The same keys, remembering at most `n` verified tokens (tests of the bound).
    #[cfg(test)]
    pub(crate) fn remembering_at_most(self, n: usize) -> Self {
        Self { remember: n, ..self }
    }

    /// The same keys, refusing tokens whose `exp − iat` exceeds `secs` (+ [`CLOCK_SKEW_SECS`]).
    /// The server sets this to its configured access-token lifetime, the only one it issues.
    pub fn with_max_lifetime(self, secs: i64) -> Self {
        Self { max_lifetime: Some(secs), ..self }
    }

    /// Keys from the env var's value: the seed in base64 (standard or URL-safe, padding
    /// optional).
    pub fn from_base64_seed(
        seed_b64: &SecretString,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, TokenError> {
        let seed =
            decode_32(seed_b64.expose_secret()).ok_or(TokenError::InvalidKey("seed must be base64 of 32 bytes"))?;
        Self::from_seed(&seed, issuer, audience)
    }

    /// Also accept tokens signed by a retired key (raw 32-byte Ed25519 public key), for
    /// rotation: keep the old key until its last access token has expired.
    pub fn add_verification_key(&mut self, public_key: &[u8; 32]) -> Result<(), TokenError> {
        VerifyingKey::from_bytes(public_key).map_err(|_| TokenError::InvalidKey("not an Ed25519 public key"))?;
        self.decoding.insert(kid_for(public_key), DecodingKey::from_ed_der(public_key));
        Ok(())
    }

    /// [`Self::add_verification_key`] from base64 of the 32-byte public key.
    pub fn add_verification_key_base64(&mut self, b64: &str) -> Result<(), TokenError> {
        let pk = decode_32(b64).ok_or(TokenError::InvalidKey("public key must be base64 of 32 bytes"))?;
        self.add_verification_key(&pk)
    }

    /// `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Raw public key of the signing key (to keep for verification after rotation).
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// Claims for a new access token valid for `ttl_secs` from `now`, with a fresh `jti`.
    pub fn claims(&self, sub: Uuid, sid: Uuid, org: Uuid, role: impl Into<String>, now: i64, ttl_secs: i64) -> Claims {
        Claims {
            sub,
            sid,
            org,
            role: role.into(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
        }
    }

    /// Signs `claims` with `alg: EdDSA` and this key's `kid`.
    pub fn issue(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Validates a token at time `now` (Unix seconds) and returns its claims.
    pub fn validate(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = self.verified.lock().unwrap_or_else(PoisonError::into_inner).get(&digest).cloned();
        let fresh = remembered.is_none();
        let claims = match remembered {
            Some(claims) => claims,
            None => self.verify(token)?,
        };
        if now > claims.exp.saturating_add(CLOCK_SKEW_SECS) {
            return Err(TokenError::Expired);
        }
        if claims.iat > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(TokenError::NotYetValid);
        }
        if let Some(max) = self.max_lifetime
            && claims.exp.saturating_sub(claims.iat) > max.saturating_add(CLOCK_SKEW_SECS)
        {
            return Err(TokenError::LifetimeTooLong);
        }
        if fresh {
            let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if verified.len() >= self.remember {
                verified.retain(|_, c| now <= c.exp.saturating_add(CLOCK_SKEW_SECS));
                if verified.len() >= self.remember {
                    verified.clear();
                }
            }
            verified.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    /// How many verified tokens are remembered.
    pub fn remembered(&self) -> usize {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Signature, algorithm, key id, issuer, audience and the required claims: everything
    /// about a token that does not depend on the time.
    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let key = header.kid.as_deref().and_then(|kid| self.decoding.get(kid)).ok_or(TokenError::UnknownKey)?;

        let mut v = Validation::new(Algorithm::EdDSA);
        v.validate_exp = false; // checked by `validate` against the caller's clock
        v.validate_nbf = false;
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);

        let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => TokenError::UnsupportedAlgorithm,
            _ => TokenError::Malformed,
        })?;
        let claims = data.claims;
        // Belt and braces: the library checked these too.
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }
}

/// Decodes base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
fn decode_32(b64: &str) -> Option<Zeroizing<[u8; 32]>> {
    let trimmed = b64.trim().trim_end_matches('=');
    let mut cleaned = Zeroizing::new(String::with_capacity(trimmed.len()));
    cleaned.extend(trimmed.chars().map(|c| match c {
        '-' => '+',
        '_' => '/',
        c => c,
    }));
    let bytes = Zeroizing::new(base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.as_bytes()).ok()?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return None;
    }
    out.copy_from_slice(&bytes);
    Some(out)
}
