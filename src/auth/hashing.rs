//! Password work off the async executor: Argon2 and zxcvbn run on the blocking pool (keeping
//! the request span), at most `CUSTOS_PASSWORD_HASH_CONCURRENCY` at a time so a login burst
//! queues here instead of taking every core from the server's other requests.

use secrecy::{ExposeSecret, SecretString};

use super::error::AuthError;
use super::password::{PasswordError, PasswordPolicy};
use crate::state::AppState;
use crate::telemetry::spawn_blocking_in_span;

/// Outcome of a verification: whether it matched, and a fresh hash when the stored one was
/// legacy (bcrypt) or below the current Argon2 parameters.
pub struct Checked {
    pub matched: bool,
    pub rehash: Option<String>,
}

async fn blocking<R: Send + 'static>(state: &AppState, f: impl FnOnce() -> R + Send + 'static) -> Result<R, AuthError> {
    let _permit = state.hash_slots.acquire().await.map_err(AuthError::internal)?;
    spawn_blocking_in_span(f).await.map_err(AuthError::internal)
}

/// Verifies `password` against `stored`, or against a dummy hash when there is no account
/// (same work, so timing does not reveal whether the email exists).
pub async fn verify(state: &AppState, password: SecretString, stored: Option<String>) -> Result<Checked, AuthError> {
    // Oversized input is refused before anything depends on whether the account exists: no
    // hashing for known or unknown emails alike, so the response time tells nothing.
    if password.expose_secret().len() > super::password::MAX_VERIFY_BYTES {
        return Ok(Checked { matched: false, rehash: None });
    }
    let params = state.settings.auth.argon2;
    blocking(state, move || {
        let Some(stored) = stored else {
            let _ = params.dummy_verify(&password);
            return Ok(Checked { matched: false, rehash: None });
        };
        match params.verify_password(&password, &stored) {
            Ok(v) if v.needs_rehash => Ok(Checked { matched: true, rehash: Some(params.hash_password(&password)?) }),
            Ok(_) => Ok(Checked { matched: true, rehash: None }),
            Err(PasswordError::Mismatch) => Ok(Checked { matched: false, rehash: None }),
            // A malformed stored hash cannot match; the caller answers the generic 401.
            Err(PasswordError::MalformedHash | PasswordError::UnsupportedScheme) => {
                tracing::warn!("stored password hash is unusable");
                Ok(Checked { matched: false, rehash: None })
            }
            Err(e) => Err(e),
        }
    })
    .await?
    .map_err(AuthError::internal)
}

/// Hashes a password with the configured parameters.
pub async fn hash(state: &AppState, password: SecretString) -> Result<String, AuthError> {
    let params = state.settings.auth.argon2;
    blocking(state, move || params.hash_password(&password)).await?.map_err(AuthError::internal)
}

/// Checks a new password against the policy (zxcvbn is CPU work too) and hashes it.
pub async fn check_and_hash(
    state: &AppState,
    password: SecretString,
    policy: PasswordPolicy,
    email_local_part: String,
) -> Result<String, AuthError> {
    let params = state.settings.auth.argon2;
    blocking(state, move || {
        policy.check(&password, &email_local_part, &[]).map_err(AuthError::WeakPassword)?;
        params.hash_password(&password).map_err(AuthError::internal)
    })
    .await?
}
