//! The second factor in the database: TOTP enrolment and confirmation (secret sealed with
//! AES-256-GCM bound to its row), checking a TOTP or recovery code at login, and issuing
//! recovery codes (stored as HMACs, single use, a new set replaces the old one).
//!
//! Replay: the accepted TOTP step is written with a guarded UPDATE (`last_used_step IS NULL
//! OR last_used_step < step`) that must change exactly one row, so two concurrent requests
//! with the same code cannot both win.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::caller::AuthUser;
use super::error::AuthError;
use super::totp::{self, TotpSecret};
use crate::audit::{self, Action, AuditEvent, Outcome};
use crate::db::{self, Claims};
use crate::state::AppState;

/// Which second factor a code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    RecoveryCode,
}

impl Factor {
    pub fn label(self) -> &'static str {
        match self {
            Self::Totp => "TOTP",
            Self::RecoveryCode => "recovery code",
        }
    }
}

/// What `POST /v1/me/mfa/enroll` shows once, for the authenticator app (Debug redacts).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
}

/// Recovery codes, shown once (Debug redacts).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment").field("secret_base32", &"<redacted>").field("otpauth_uri", &"<redacted>").finish()
    }
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodes").field("count", &self.recovery_codes.len()).finish_non_exhaustive()
    }
}

async fn open_secret(state: &AppState, credential_id: Uuid, sealed: &[u8]) -> Result<TotpSecret, AuthError> {
    let raw = state
        .crypto
        .keyring
        .open_fresh("mfa_credentials", "secret_enc", credential_id, sealed)
        .await
        .map_err(AuthError::internal)?;
    TotpSecret::from_bytes(&raw).map_err(AuthError::internal)
}

/// Records `step` as accepted unless a step at least as new was accepted before.
async fn accept_step(
    conn: &mut PgConnection,
    credential_id: Uuid,
    step: i64,
    confirm_at: Option<DateTime<Utc>>,
) -> Result<bool, AuthError> {
    let n = sqlx::query(
        "UPDATE mfa_credentials SET last_used_step = $2, confirmed_at = coalesce(confirmed_at, $3) \
         WHERE id = $1 AND (last_used_step IS NULL OR last_used_step < $2)",
    )
    .bind(credential_id)
    .bind(step)
    .bind(confirm_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Checks a login code for `user_id`: a TOTP code of the confirmed credential (±1 step, no
/// replay) or an unused recovery code (consumed here). `None` when neither matches.
pub async fn check_code(
    conn: &mut PgConnection,
    state: &AppState,
    user_id: Uuid,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<Factor>, AuthError> {
    if totp::is_totp_format(code) {
        let cred: Option<(Uuid, Vec<u8>, Option<i64>)> = sqlx::query_as(
            "SELECT id, secret_enc, last_used_step FROM mfa_credentials WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((id, sealed, last)) = cred else { return Ok(None) };
        let secret = open_secret(state, id, &sealed).await?;
        let Some(step) = totp::verify(&secret, code, now.timestamp(), last) else { return Ok(None) };
        return Ok(accept_step(conn, id, step, None).await?.then_some(Factor::Totp));
    }
    if totp::normalize_recovery_code(code).is_none() {
        return Ok(None);
    }
    let hash = totp::hash_recovery_code(&state.recovery_key, code);
    let n =
        sqlx::query("UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
            .bind(user_id)
            .bind(&hash[..])
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected();
    Ok((n == 1).then_some(Factor::RecoveryCode))
}

/// `POST /v1/me/mfa/enroll`: a fresh TOTP secret (replacing any unconfirmed one).
///
/// The secret is sealed for the id of the row it ends up in: the row is created (or found)
/// first and locked, then sealed and written — two concurrent enrolments serialise on the lock
/// instead of one storing a ciphertext bound to an id the row does not have.
pub async fn enroll(state: &AppState, user: &AuthUser) -> Result<Enrolment, AuthError> {
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    sqlx::query(
        "INSERT INTO mfa_credentials (id, org_id, user_id, secret_enc) VALUES ($1, $2, $3, '\\x') \
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(user.org_id)
    .bind(user.user_id)
    .execute(&mut *tx)
    .await?;
    let (id, confirmed): (Uuid, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT id, confirmed_at FROM mfa_credentials WHERE user_id = $1 FOR UPDATE")
            .bind(user.user_id)
            .fetch_one(&mut *tx)
            .await?;
    if confirmed.is_some() {
        return Err(AuthError::Conflict("MFA is already enabled; an admin can reset it".into()));
    }
    let email = super::account::email_of(&mut tx, state, user.user_id).await?;
    let secret = totp::new_secret();
    let sealed = state
        .crypto
        .keyring
        .seal("mfa_credentials", "secret_enc", id, secret.as_bytes())
        .map_err(AuthError::internal)?;
    sqlx::query("UPDATE mfa_credentials SET secret_enc = $2, last_used_step = NULL WHERE id = $1")
        .bind(id)
        .bind(&sealed)
        .execute(&mut *tx)
        .await?;
    let event =
        AuditEvent::new(Action::Mfa, "mfa_credential", Outcome::Success).resource(id).reason("TOTP enrolment started");
    audit::record(&mut tx, &ctx, &event).await?;
    let uri = totp::otpauth_uri(&secret, &email).map_err(AuthError::internal)?;
    tx.commit().await?;
    Ok(Enrolment {
        secret_base32: totp::secret_base32(&secret).expose_secret().to_owned(),
        otpauth_uri: uri.expose_secret().to_owned(),
    })
}

/// `POST /v1/me/mfa/confirm`: the first code proves the app has the secret; MFA is on, this
/// session counts as MFA-verified, and ten recovery codes are issued.
pub async fn confirm(state: &AppState, user: &AuthUser, code: &str) -> Result<RecoveryCodes, AuthError> {
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let cred: Option<(Uuid, Vec<u8>, Option<i64>)> = sqlx::query_as(
        "SELECT id, secret_enc, last_used_step FROM mfa_credentials WHERE user_id = $1 AND confirmed_at IS NULL FOR UPDATE",
    )
    .bind(user.user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, sealed, last)) = cred else {
        return Err(AuthError::Conflict("no MFA enrolment in progress (POST /v1/me/mfa/enroll first)".into()));
    };
    let secret = open_secret(state, id, &sealed).await?;
    let accepted = match totp::verify(&secret, code, now.timestamp(), last) {
        Some(step) => accept_step(&mut tx, id, step, Some(now)).await?,
        None => false,
    };
    if !accepted {
        let event = AuditEvent::new(Action::Mfa, "mfa_credential", Outcome::Denied)
            .resource(id)
            .reason("TOTP confirmation failed");
        audit::record(&mut tx, &ctx, &event).await?;
        let escalation = super::lockout::count_session_failure(&mut tx, state, user, &ctx, now).await?;
        tx.commit().await?;
        return Err(refused(escalation));
    }
    // Only the sign-in context may mark a session MFA-verified (policies/30_rls_identity.sql):
    // switch to it, pinned to this user, for that one statement.
    db::tx::set_claims(&mut tx, &Claims::auth_for(user.user_id, user.org_id, user.meta.request_id)).await?;
    sqlx::query("UPDATE sessions SET mfa_verified = true WHERE id = $1 AND user_id = $2")
        .bind(user.session_id)
        .bind(user.user_id)
        .execute(&mut *tx)
        .await?;
    db::tx::set_claims(&mut tx, &user.claims()).await?;
    let codes = replace_recovery_codes(&mut tx, state, user, now).await?;
    let event = AuditEvent::new(Action::Mfa, "mfa_credential", Outcome::Success)
        .resource(id)
        .reason("TOTP confirmed; MFA enabled; recovery codes issued");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(codes)
}

/// `POST /v1/me/mfa/recovery-codes`: a new set (the old one stops working), after a fresh
/// TOTP code (step-up).
pub async fn regenerate(state: &AppState, user: &AuthUser, code: &str) -> Result<RecoveryCodes, AuthError> {
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let ok = totp::is_totp_format(code) && check_code(&mut tx, state, user.user_id, code, now).await?.is_some();
    if !ok {
        let event = AuditEvent::new(Action::Mfa, "recovery_codes", Outcome::Denied)
            .reason("regeneration refused: bad TOTP code");
        audit::record(&mut tx, &ctx, &event).await?;
        let escalation = super::lockout::count_session_failure(&mut tx, state, user, &ctx, now).await?;
        tx.commit().await?;
        return Err(refused(escalation));
    }
    let codes = replace_recovery_codes(&mut tx, state, user, now).await?;
    let event = AuditEvent::new(Action::Mfa, "recovery_codes", Outcome::Success)
        .reason("recovery codes regenerated; old set invalidated");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(codes)
}

/// A wrong step-up code: 422 — or 401 once the guesses locked the account (and revoked the
/// session).
fn refused(escalation: super::lockout::Escalation) -> AuthError {
    if escalation == super::lockout::Escalation::None {
        AuthError::validation("code", "is not the current code of your authenticator app")
    } else {
        AuthError::Unauthorized
    }
}

async fn replace_recovery_codes(
    conn: &mut PgConnection,
    state: &AppState,
    user: &AuthUser,
    now: DateTime<Utc>,
) -> Result<RecoveryCodes, AuthError> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user.user_id).execute(&mut *conn).await?;
    let codes = totp::generate_recovery_codes(totp::RECOVERY_CODE_COUNT);
    let hashes: Vec<Vec<u8>> =
        codes.iter().map(|c| totp::hash_recovery_code(&state.recovery_key, c.expose_secret()).to_vec()).collect();
    sqlx::query(
        "INSERT INTO recovery_codes (org_id, user_id, code_hash, created_at) SELECT $1, $2, h, $4 FROM unnest($3::bytea[]) AS h",
    )
    .bind(user.org_id)
    .bind(user.user_id)
    .bind(&hashes)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(RecoveryCodes { recovery_codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect() })
}
