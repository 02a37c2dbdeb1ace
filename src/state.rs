//! The state every request shares (pool, settings, data keys, token keys, clock): built once
//! at start-up and handed down. It sits below the services so that auth and clinical code
//! can take it without importing the HTTP layer (`startup`), and it holds no root key: the
//! key-encryption key stays inside the key ring, the ledger signing key goes to the
//! sequencer, and handlers get the verifier keys already encoded.

use std::sync::Arc;

use sqlx::PgPool;

use crate::audit::signing::LedgerSigner;
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::Kek;
use crate::crypto::jwt::{JwtKeys, TokenError};
use crate::crypto::store::{FieldCrypto, KeyStoreError};
use crate::keys::RootKeys;

/// `iss` of every access token.
pub const JWT_ISSUER: &str = "custos";
/// `aud` of every access token.
pub const JWT_AUDIENCE: &str = "custos-api";

/// Shared, read-only state handed to every handler.
pub struct AppState {
    pub pool: PgPool,
    pub settings: Settings,
    /// The checkpoint verifier keys (`GET /v1/audit/keys`), encoded once at start: handlers
    /// never hold a root key.
    pub ledger_verifier_keys: Vec<String>,
    /// Data keys (sealing fields) and the blind-index key.
    pub crypto: FieldCrypto,
    /// Access-token signing and verification keys.
    pub jwt: JwtKeys,
    /// "Now" for sessions, lockouts, tokens and TOTP (tests move it forward).
    pub clock: Arc<Clock>,
    /// HMAC key for recovery-code hashes (a KEK sub-key).
    pub recovery_key: zeroize::Zeroizing<[u8; 32]>,
    /// Bounds concurrent password hashing (see `AuthSettings::hash_concurrency`).
    pub hash_slots: tokio::sync::Semaphore,
    /// The WebAuthn relying party (passkeys), from `AuthSettings::webauthn_*`.
    pub webauthn: webauthn_rs::Webauthn,
    /// HMAC key of the console's session cookie and CSRF tokens (a KEK sub-key).
    pub console_key: zeroize::Zeroizing<[u8; 32]>,
    /// Wakes this server's outbox sender when a message was enqueued (`crate::auth::outbox`).
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

/// Why the server could not be assembled. Messages name variables, never values.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The data keys could not be loaded — notably a wrong `CUSTOS_KEK`.
    #[error(transparent)]
    Keys(#[from] KeyStoreError),
    /// The JWT key material is unusable.
    #[error("CUSTOS_JWT_SIGNING_KEY / CUSTOS_JWT_PREVIOUS_PUBLIC_KEYS: {0}")]
    Jwt(#[from] TokenError),
    /// Binding the listener or configuring TLS failed.
    #[error("{0:#}")]
    Server(#[from] anyhow::Error),
}

impl AppState {
    /// Loads the key material that needs the database (data keys, checked against the KEK)
    /// and derives the rest. The root keys stop here: the ledger signer goes to the sequencer,
    /// the state keeps only what handlers need.
    pub async fn load(
        settings: Settings,
        pool: PgPool,
        keys: RootKeys,
        clock: Arc<Clock>,
    ) -> Result<(Self, LedgerSigner), StartupError> {
        let kek = Kek::from_bytes(*keys.kek.expose());
        let crypto = crate::crypto::store::load_reloadable(&pool, Kek::from_bytes(*keys.kek.expose())).await?;
        crate::crypto::store::spawn_periodic_reload(&crypto.keyring, settings.key_reload);
        let mut jwt = JwtKeys::from_seed(keys.jwt_signing.expose(), JWT_ISSUER, JWT_AUDIENCE)?
            .with_max_lifetime(crate::clock::span(settings.auth.access_token_ttl).num_seconds());
        for k in &settings.auth.jwt_previous_public_keys {
            jwt.add_verification_key_base64(k)?;
        }
        let recovery_key = kek.derive_subkey("recovery-code-hash/v1");
        let console_key = kek.derive_subkey("console-cookie/v1");
        let hash_slots = tokio::sync::Semaphore::new(settings.auth.hash_concurrency);
        let ledger_signer = LedgerSigner::from_settings(&settings, &keys).map_err(anyhow::Error::from)?;
        let ledger_verifier_keys = ledger_signer.verifiers().iter().map(|v| v.encode()).collect();
        let webauthn = webauthn_rs::WebauthnBuilder::new(&settings.auth.webauthn_rp_id, &settings.auth.webauthn_origin)
            .and_then(|b| b.rp_name("Custos").build())
            .map_err(anyhow::Error::from)?;
        Ok((
            Self {
                pool,
                settings,
                ledger_verifier_keys,
                crypto,
                jwt,
                clock,
                recovery_key,
                hash_slots,
                webauthn,
                console_key,
                outbox_wake: Arc::new(tokio::sync::Notify::new()),
            },
            ledger_signer,
        ))
    }
}
