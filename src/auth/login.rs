//! Signing in: `POST /v1/auth/login` (password → session, or an MFA challenge) and
//! `POST /v1/auth/mfa/verify` (challenge + TOTP or recovery code → session), with lockout.
//!
//! No user enumeration: unknown email, wrong password, locked and disabled accounts all end
//! in the same 401 after the same Argon2 work (a dummy hash for unknown emails); only the
//! audit event says which it was. The password is verified *outside* any transaction, so a
//! burst of logins holds no database connections while hashing.
//!
//! The database context: the account is resolved by `custos.auth_user_by_email` (or the MFA
//! challenge look-up), then every statement runs in the `auth` context pinned to that account
//! (`Claims::auth_for`), which sees nothing else. An unknown email writes its failed-login
//! event to the system ledger only.
//!
//! Second-factor brute force: for an account with confirmed MFA, a correct password does NOT
//! reset the failure counter (only a completed MFA step does), and a challenge token is voided
//! after [`MAX_CHALLENGE_FAILURES`] bad codes — so alternating password + wrong codes still
//! reaches the lockout.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::caller::RequestMeta;
use super::error::AuthError;
use super::lockout;
use super::sessions::{self, Account, TokenResponse};
use super::tokens::{hash_opaque_token, new_opaque_token};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::crypto::BlindIndexKind;
use crate::db::{self, ClaimRole, Claims};
use crate::domain::Email;
use crate::state::AppState;

/// How long an MFA challenge token lives.
pub const MFA_TOKEN_TTL_SECS: i64 = 300;
/// Bad codes after which an MFA challenge token is voided (a new password step is needed).
pub const MAX_CHALLENGE_FAILURES: i32 = 3;

/// What a correct password leads to (Debug redacts the tokens).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LoginOutcome {
    /// The account has confirmed MFA: exchange `mfa_token` plus a code at `/v1/auth/mfa/verify`.
    MfaRequired { mfa_required: bool, mfa_token: String, expires_in: i64 },
    /// Signed in.
    Tokens(TokenResponse),
}

impl std::fmt::Debug for LoginOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MfaRequired { expires_in, .. } => f
                .debug_struct("MfaRequired")
                .field("mfa_token", &"<redacted>")
                .field("expires_in", expires_in)
                .finish_non_exhaustive(),
            Self::Tokens(t) => f.debug_tuple("Tokens").field(t).finish(),
        }
    }
}

/// The account row a login works on (read again `FOR UPDATE` before any change).
#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    pub(super) id: Uuid,
    pub(super) org_id: Uuid,
    role: String,
    password_hash: String,
    status: String,
    locked_until: Option<DateTime<Utc>>,
    must_change_password: bool,
    mfa_confirmed: bool,
}

const USER_COLUMNS: &str = "u.id, u.org_id, u.role::text AS role, u.password_hash, u.status::text AS status, \
    u.locked_until, u.must_change_password, \
    (EXISTS (SELECT 1 FROM mfa_credentials m WHERE m.user_id = u.id AND m.confirmed_at IS NOT NULL) \
     OR EXISTS (SELECT 1 FROM passkey_credentials p WHERE p.user_id = u.id AND p.clone_detected_at IS NULL)) AS mfa_confirmed";

impl UserRow {
    pub(super) fn account(&self) -> Result<Account, AuthError> {
        let role = ClaimRole::from_user_role(&self.role)
            .ok_or_else(|| AuthError::internal(anyhow::anyhow!("unknown role in users")))?;
        Ok(Account { user_id: self.id, org_id: self.org_id, role, must_change_password: self.must_change_password })
    }

    /// Why this account may not sign in now, if it may not.
    pub(super) fn blocked(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if self.status != "active" {
            Some("account disabled")
        } else if self.locked_until.is_some_and(|t| t > now) {
            Some("account locked")
        } else {
            None
        }
    }
}

/// `POST /v1/auth/login` without naming an organization.
pub async fn login(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password: SecretString,
) -> Result<LoginOutcome, AuthError> {
    login_in(state, meta, email, None, password).await
}

/// `POST /v1/auth/login`. Emails are unique per organization, so an email may name accounts in
/// several: then `organization` (its name or id) picks one, and without it the answer is the
/// same 401 as an unknown email (after the same dummy hash) — sign-in reveals nothing about
/// other organizations' accounts either.
pub async fn login_in(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    organization: Option<&str>,
    password: SecretString,
) -> Result<LoginOutcome, AuthError> {
    let bidx = Email::parse(email).ok().map(|e| state.crypto.blind.index(BlindIndexKind::Email, e.as_str()));
    let mut ambiguous = false;
    let found: Option<(Uuid, Uuid, String)> = match bidx {
        None => None,
        Some(bidx) => {
            let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
            let mut accounts: Vec<(Uuid, Uuid)> =
                sqlx::query_as("SELECT user_id, org_id FROM custos.auth_user_by_email($1)")
                    .bind(&bidx[..])
                    .fetch_all(&mut *tx)
                    .await?;
            if let Some(org) = organization {
                let org: Option<Uuid> = sqlx::query_scalar("SELECT custos.organization_id($1)")
                    .bind(org.chars().take(200).collect::<String>())
                    .fetch_one(&mut *tx)
                    .await?;
                accounts.retain(|(_, o)| Some(*o) == org);
            }
            ambiguous = accounts.len() > 1;
            let account = if ambiguous { None } else { accounts.pop() };
            let row = match account {
                None => None,
                Some((user_id, org_id)) => {
                    db::tx::set_claims(&mut tx, &Claims::auth_for(user_id, org_id, meta.request_id)).await?;
                    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    Some((user_id, org_id, hash))
                }
            };
            tx.commit().await?;
            row
        }
    };
    let checked = super::hashing::verify(state, password, found.as_ref().map(|(_, _, h)| h.clone())).await?;

    let now = state.clock.now();
    let Some((user_id, org_id, verified_hash)) = found else {
        let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
        let reason =
            if ambiguous { "email has accounts in several organizations and none was named" } else { "unknown user" };
        let event = AuditEvent::new(Action::LoginFailed, "user", Outcome::Denied).reason(reason);
        audit::record(&mut tx, &meta.audit_context(), &event).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    };
    let mut tx = db::begin(&state.pool, &Claims::auth_for(user_id, org_id, meta.request_id)).await?;
    let user = lock_user(&mut tx, user_id).await?;
    let ctx = fail_context(meta, &user);
    let failure = if let Some(reason) = user.blocked(now) {
        Some(reason)
    } else if !checked.matched {
        Some("bad password")
    } else if user.password_hash != verified_hash {
        Some("password changed during login")
    } else {
        None
    };
    if let Some(reason) = failure {
        let counts = reason == "bad password";
        fail(&mut tx, state, &ctx, &user, Action::LoginFailed, reason, counts, now).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    }
    // With MFA enrolled the sign-in is not complete yet: the counters stay until the second
    // factor succeeds, or password + wrong codes could be alternated forever.
    let reset =
        if user.mfa_confirmed { "" } else { "failed_attempts = 0, consecutive_failures = 0, locked_until = NULL, " };
    let sql = format!("UPDATE users SET {reset}password_hash = coalesce($2, password_hash) WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.id).bind(checked.rehash.as_deref()).execute(&mut *tx).await?;
    let account = user.account()?;
    let ctx = account.audit_context(meta);
    if checked.rehash.is_some() {
        let event = AuditEvent::new(Action::Update, "user", Outcome::Success)
            .resource(user.id)
            .reason("password hash upgraded to current Argon2id parameters");
        audit::record(&mut tx, &ctx, &event).await?;
    }
    if user.mfa_confirmed {
        let (token, hash) = new_opaque_token();
        sqlx::query(
            "INSERT INTO mfa_challenges (org_id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.org_id)
        .bind(user.id)
        .bind(&hash[..])
        .bind(now)
        .bind(now + chrono::Duration::seconds(MFA_TOKEN_TTL_SECS))
        .execute(&mut *tx)
        .await?;
        let event = AuditEvent::new(Action::Login, "user", Outcome::Success)
            .resource(user.id)
            .reason("password verified; MFA challenge issued");
        audit::record(&mut tx, &ctx, &event).await?;
        tx.commit().await?;
        return Ok(LoginOutcome::MfaRequired {
            mfa_required: true,
            mfa_token: token.expose_secret().to_owned(),
            expires_in: MFA_TOKEN_TTL_SECS,
        });
    }
    let tokens = sessions::start(&mut tx, state, &account, false, meta).await?;
    let event = AuditEvent::new(Action::Login, "session", Outcome::Success)
        .resource(tokens.session_id)
        .reason(if account.role == ClaimRole::Patient { "password" } else { "password; MFA enrolment required" });
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(LoginOutcome::Tokens(tokens))
}

/// Opens the sign-in transaction and locks the live MFA challenge `mfa_token` names:
/// `(transaction, challenge id, user id, org id)`. A token that is unknown, used or expired is
/// refused: recorded as a denied `mfa` event with `reason` (committed), then 401.
pub(super) async fn open_challenge(
    state: &AppState,
    meta: &RequestMeta,
    mfa_token: &str,
    now: DateTime<Utc>,
    reason: &'static str,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Uuid, Uuid, Uuid), AuthError> {
    let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
    let hash = hash_opaque_token(mfa_token);
    let owner: Option<(Uuid, Uuid)> = match hash {
        None => None,
        Some(hash) => {
            sqlx::query_as("SELECT user_id, org_id FROM custos.auth_user_by_mfa_challenge($1)")
                .bind(&hash[..])
                .fetch_optional(&mut *tx)
                .await?
        }
    };
    let challenge: Option<(Uuid, DateTime<Utc>, Option<DateTime<Utc>>)> = match (owner, hash) {
        (Some((user_id, org_id)), Some(hash)) => {
            db::tx::set_claims(&mut tx, &Claims::auth_for(user_id, org_id, meta.request_id)).await?;
            sqlx::query_as("SELECT id, expires_at, used_at FROM mfa_challenges WHERE token_hash = $1 FOR UPDATE")
                .bind(&hash[..])
                .fetch_optional(&mut *tx)
                .await?
        }
        _ => None,
    };
    match (owner, challenge) {
        (Some((user_id, org_id)), Some((id, expires_at, None))) if expires_at > now => Ok((tx, id, user_id, org_id)),
        _ => {
            let ctx = AuditContext { org_id: owner.map(|(_, org)| org), ..meta.audit_context() };
            let event = AuditEvent::new(Action::Mfa, "user", Outcome::Denied).reason(reason);
            audit::record(&mut tx, &ctx, &event).await?;
            tx.commit().await?;
            Err(AuthError::Unauthorized)
        }
    }
}

/// `POST /v1/auth/mfa/verify`: a live challenge plus a TOTP or recovery code → session.
pub async fn verify_mfa(
    state: &AppState,
    meta: &RequestMeta,
    mfa_token: &str,
    code: &str,
) -> Result<TokenResponse, AuthError> {
    let now = state.clock.now();
    let (mut tx, challenge_id, user_id, _) =
        open_challenge(state, meta, mfa_token, now, "unknown, used or expired MFA token").await?;
    let user = lock_user(&mut tx, user_id).await?;
    let ctx = fail_context(meta, &user);
    if let Some(reason) = user.blocked(now) {
        fail(&mut tx, state, &ctx, &user, Action::Mfa, reason, false, now).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    }
    let Some(factor) = super::mfa::check_code(&mut tx, state, user.id, code, now).await? else {
        fail(&mut tx, state, &ctx, &user, Action::Mfa, "bad or replayed MFA code", true, now).await?;
        count_challenge_failure(&mut tx, challenge_id, now).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    };
    if !use_challenge(&mut tx, challenge_id, now).await? {
        return Err(AuthError::Unauthorized);
    }
    reset_failures(&mut tx, user.id).await?;
    let account = user.account()?;
    let ctx = account.audit_context(meta);
    let mfa_event = AuditEvent::new(Action::Mfa, "user", Outcome::Success).resource(user.id).reason(factor.label());
    audit::record(&mut tx, &ctx, &mfa_event).await?;
    let tokens = sessions::start(&mut tx, state, &account, true, meta).await?;
    let event = AuditEvent::new(Action::Login, "session", Outcome::Success)
        .resource(tokens.session_id)
        .reason(format!("password and {}", factor.label()));
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// A bad second factor against a challenge: counted; the challenge is voided at
/// [`MAX_CHALLENGE_FAILURES`].
pub(super) async fn count_challenge_failure(
    conn: &mut PgConnection,
    challenge_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    sqlx::query(
        "UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1, \
         used_at = CASE WHEN failed_attempts + 1 >= $3 THEN $2 END WHERE id = $1",
    )
    .bind(challenge_id)
    .bind(now)
    .bind(MAX_CHALLENGE_FAILURES)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a challenge used; false when another request used it first.
pub(super) async fn use_challenge(
    conn: &mut PgConnection,
    challenge_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, AuthError> {
    let used = sqlx::query("UPDATE mfa_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
        .bind(challenge_id)
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(used == 1)
}

/// A completed sign-in clears the failure counters and any lock.
pub(super) async fn reset_failures(conn: &mut PgConnection, user_id: Uuid) -> Result<(), AuthError> {
    sqlx::query("UPDATE users SET failed_attempts = 0, consecutive_failures = 0, locked_until = NULL WHERE id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn lock_user(conn: &mut PgConnection, user_id: Uuid) -> Result<UserRow, AuthError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 FOR UPDATE OF u");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id).fetch_one(conn).await?)
}

/// The audit context of an attempt against a known account: its org, no actor yet.
pub(super) fn fail_context(meta: &RequestMeta, user: &UserRow) -> AuditContext {
    AuditContext { org_id: Some(user.org_id), ..meta.audit_context() }
}

/// Records a failed attempt and, when `counts`, adds it to the lockout counter — locking the
/// account (with its own security event) when the threshold is reached.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fail(
    conn: &mut PgConnection,
    state: &AppState,
    ctx: &AuditContext,
    user: &UserRow,
    action: Action,
    reason: &str,
    counts: bool,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let event = AuditEvent::new(action, "user", Outcome::Denied).resource(user.id).reason(reason);
    audit::record(&mut *conn, ctx, &event).await?;
    if counts {
        lockout::count_failure(conn, state, ctx, user.id, now).await?;
    }
    Ok(())
}
