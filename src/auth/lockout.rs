//! Counting failed credential attempts, wherever they happen: the password and MFA steps of
//! sign-in, and the current-password / TOTP checks of a signed-in session (`/v1/me/password`,
//! `/v1/me/mfa/*`), so a stolen access token cannot guess without limit either.
//!
//! Two counters on `users`: `failed_attempts` drives the temporary lock (N in a row → locked
//! for the configured time, counter restarts) and `consecutive_failures` is never reset by a
//! lock — only by a complete sign-in (password, plus the second factor when enrolled) or by an
//! admin's unlock/enable. At [`DISABLE_AFTER`] the account is disabled until an admin
//! re-enables it (NIST SP 800-63B §5.2.2: at most 100 consecutive failed attempts).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::AuthError;
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::clock::span;
use crate::state::AppState;

/// Consecutive failures (across temporary locks) after which the account is disabled.
pub const DISABLE_AFTER: i32 = 100;

/// What a counted failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// Counted; nothing more.
    None,
    /// The temporary lock was applied.
    Locked,
    /// The account was disabled (admin must re-enable).
    Disabled,
}

/// Adds one failed attempt of `user_id` (in the caller's transaction and claims: the pinned
/// sign-in context, or the user's own session) and applies the lock or the disable when a
/// threshold is reached, each with its own security event.
pub async fn count_failure(
    conn: &mut PgConnection,
    state: &AppState,
    ctx: &AuditContext,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Escalation, AuthError> {
    let (attempts, consecutive): (i32, i32) = sqlx::query_as(
        "UPDATE users SET failed_attempts = failed_attempts + 1, consecutive_failures = consecutive_failures + 1 \
         WHERE id = $1 RETURNING failed_attempts, consecutive_failures",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    if consecutive >= DISABLE_AFTER {
        sqlx::query("UPDATE users SET status = 'disabled' WHERE id = $1 AND status = 'active'")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        let event = AuditEvent::new(Action::Security, "user", Outcome::Success).resource(user_id).reason(format!(
            "account disabled after {consecutive} consecutive failed attempts; an admin must re-enable it"
        ));
        audit::record(&mut *conn, ctx, &event).await?;
        return Ok(Escalation::Disabled);
    }
    if attempts >= state.settings.auth.lockout_threshold {
        let until = now + span(state.settings.auth.lockout_duration);
        sqlx::query(
            "UPDATE users SET failed_attempts = 0, locked_until = greatest(coalesce(locked_until, $2), $2) WHERE id = $1",
        )
        .bind(user_id)
        .bind(until)
        .execute(&mut *conn)
        .await?;
        let event = AuditEvent::new(Action::Security, "user", Outcome::Success).resource(user_id).reason(format!(
            "account locked after {attempts} consecutive failed attempts until {} ({consecutive} in a row overall)",
            until.to_rfc3339()
        ));
        audit::record(&mut *conn, ctx, &event).await?;
        return Ok(Escalation::Locked);
    }
    Ok(Escalation::None)
}

/// A failed credential check inside a signed-in session (current password, TOTP step-up):
/// counted like a sign-in failure, in the user's own claims. When it locks or disables the
/// account, every session of the user — the one that guessed too — is revoked.
pub async fn count_session_failure(
    conn: &mut PgConnection,
    state: &AppState,
    user: &super::AuthUser,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Escalation, AuthError> {
    let escalation = count_failure(conn, state, ctx, user.user_id, now).await?;
    if escalation != Escalation::None {
        super::sessions::revoke_all(conn, user.user_id, None, "too many failed credential attempts", now).await?;
    }
    Ok(escalation)
}
