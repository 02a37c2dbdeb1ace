//! The signed-in user's own account: profile, password change (revokes every other session),
//! live sessions (list, revoke one), logout.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::caller::AuthUser;
use super::error::AuthError;
use super::password::PasswordPolicy;
use super::sessions;
use crate::audit::{self, Action, AuditEvent, Outcome};
use crate::clock::span;
use crate::db::ClaimRole;
use crate::state::AppState;

/// Opens `users.email_enc` of `user_id` (visible to the caller under RLS).
pub async fn email_of(conn: &mut PgConnection, state: &AppState, user_id: Uuid) -> Result<String, AuthError> {
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT email_enc FROM users WHERE id = $1").bind(user_id).fetch_one(conn).await?;
    let email = state
        .crypto
        .keyring
        .open_string_fresh("users", "email_enc", user_id, &sealed)
        .await
        .map_err(AuthError::internal)?;
    Ok(email.as_str().to_owned())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub role: &'static str,
    pub org_id: Uuid,
    pub mfa_enabled: bool,
    pub mfa_enrollment_required: bool,
    pub must_change_password: bool,
    pub session: SessionExpiry,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionExpiry {
    pub id: Uuid,
    /// Absolute end of the session.
    pub expires_at: DateTime<Utc>,
    /// End of the session if no further request arrives.
    pub idle_expires_at: DateTime<Utc>,
}

/// `GET /v1/me`.
pub async fn me(state: &AppState, user: &AuthUser) -> Result<Me, AuthError> {
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let email = email_of(&mut tx, state, user.user_id).await?;
    let mfa_enabled: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM mfa_credentials WHERE user_id = $1 AND confirmed_at IS NOT NULL)",
    )
    .bind(user.user_id)
    .fetch_one(&mut *tx)
    .await?;
    // A read of the account's identity (its email among it): on record like any other.
    let event = AuditEvent::new(Action::Read, "user", Outcome::Success).resource(user.user_id);
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(Me {
        id: user.user_id,
        email,
        role: user.role.as_str(),
        org_id: user.org_id,
        mfa_enabled,
        mfa_enrollment_required: user.mfa_enrollment_required(),
        must_change_password: user.must_change_password,
        session: SessionExpiry {
            id: user.session_id,
            expires_at: user.session_expires_at,
            idle_expires_at: user.idle_expires_at,
        },
    })
}

/// `POST /v1/me/password`: verifies the current password, applies the policy to the new one,
/// clears `must_change_password` and revokes every other session of the user.
pub async fn change_password(
    state: &AppState,
    user: &AuthUser,
    current: SecretString,
    new: SecretString,
) -> Result<(), AuthError> {
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user.user_id)
        .fetch_one(&mut *tx)
        .await?;
    let email = email_of(&mut tx, state, user.user_id).await?;
    tx.commit().await?;

    let checked = super::hashing::verify(state, current, Some(stored)).await?;
    if !checked.matched {
        let (mut tx, ctx) = user.begin(&state.pool).await?;
        let event = AuditEvent::new(Action::Update, "user", Outcome::Denied)
            .resource(user.user_id)
            .reason("password change refused: wrong current password");
        audit::record(&mut tx, &ctx, &event).await?;
        // A stolen access token must not become an unlimited password oracle.
        let escalation = super::lockout::count_session_failure(&mut tx, state, user, &ctx, state.clock.now()).await?;
        tx.commit().await?;
        if escalation != super::lockout::Escalation::None {
            return Err(AuthError::Unauthorized);
        }
        return Err(AuthError::Forbidden {
            code: "invalid_current_password",
            message: "the current password is not correct".into(),
        });
    }
    let policy = PasswordPolicy::for_role(user.role != ClaimRole::Patient);
    let local = email.split('@').next().unwrap_or_default().to_owned();
    let hash = super::hashing::check_and_hash(state, new, policy, local).await?;

    let now = state.clock.now();
    let mut tx = crate::db::begin(&state.pool, &user.claims()).await?;
    sqlx::query(
        "UPDATE users SET password_hash = $2, must_change_password = false, password_changed_at = $3 WHERE id = $1",
    )
    .bind(user.user_id)
    .bind(&hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let revoked = sessions::revoke_all(&mut tx, user.user_id, Some(user.session_id), "password changed", now).await?;
    let event = AuditEvent::new(Action::Update, "user", Outcome::Success)
        .resource(user.user_id)
        .reason(format!("password changed; {revoked} other session(s) revoked"));
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

/// `GET /v1/me/sessions`: the caller's live sessions, newest first.
pub async fn list_sessions(state: &AppState, user: &AuthUser) -> Result<Vec<SessionInfo>, AuthError> {
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let rows: Vec<SessionInfo> = sqlx::query_as(
        "SELECT id, created_at, last_seen_at, expires_at, host(client_ip) AS client_ip, user_agent, id = $2 AS current \
         FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3 AND last_seen_at > $4 \
         ORDER BY created_at DESC LIMIT 100",
    )
    .bind(user.user_id)
    .bind(user.session_id)
    .bind(now)
    .bind(now - span(state.settings.auth.idle_timeout))
    .fetch_all(&mut *tx)
    .await?;
    let event = AuditEvent::new(Action::Read, "session", Outcome::Success).reason("own session list");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(rows)
}

/// `DELETE /v1/me/sessions/{id}` (and logout, with the caller's own session id).
pub async fn revoke_own_session(
    state: &AppState,
    user: &AuthUser,
    session_id: Uuid,
    reason: &str,
) -> Result<(), AuthError> {
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    // Filter by user explicitly: RLS would let an admin see the whole org's sessions.
    let n = sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(session_id)
    .bind(user.user_id)
    .bind(now)
    .bind(reason)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(AuthError::NotFound);
    }
    let event = AuditEvent::new(Action::Logout, "session", Outcome::Success).resource(session_id).reason(reason);
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(())
}
