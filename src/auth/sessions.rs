//! Server-side sessions and the tokens that point at them: a session row per sign-in (idle
//! timeout, absolute lifetime, revocation with a reason), a short-lived EdDSA access token
//! naming it (`sid`), and an opaque single-use refresh token (stored as SHA-256) rotated on
//! every refresh. Presenting a refresh token that was already used revokes the whole session
//! (the token family) and records a security event.
//!
//! Automatic logoff (HIPAA §164.312(a)(2)(iii)): only requests the user makes with an access
//! token move `last_seen_at`. A refresh does not — a client that refreshes on a timer would
//! otherwise keep an unattended session alive forever. A session whose user has been idle for
//! the idle timeout cannot be refreshed either.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::caller::RequestMeta;
use super::error::AuthError;
use super::tokens::{hash_opaque_token, new_opaque_token};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::clock::span;
use crate::db::{self, ClaimRole, Claims};
use crate::state::AppState;

/// The token pair a successful sign-in or refresh returns (Debug redacts the tokens).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub session_id: Uuid,
    /// Staff session without a second factor: only `/v1/me*` and MFA enrolment work.
    pub mfa_enrollment_required: bool,
    /// Only `/v1/me` and `/v1/me/password` work until the password is changed.
    pub password_change_required: bool,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// The account a session is opened for.
#[derive(Debug, Clone, Copy)]
pub struct Account {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: ClaimRole,
    pub must_change_password: bool,
}

impl Account {
    /// Audit context with this account as the actor.
    pub fn audit_context(&self, meta: &RequestMeta) -> AuditContext {
        AuditContext {
            org_id: Some(self.org_id),
            actor_id: Some(self.user_id),
            actor_role: Some(self.role.as_str()),
            ..meta.audit_context()
        }
    }
}

/// Opens a session for `account` and issues its first token pair (caller commits).
pub async fn start(
    conn: &mut PgConnection,
    state: &AppState,
    account: &Account,
    mfa_verified: bool,
    meta: &RequestMeta,
) -> Result<TokenResponse, AuthError> {
    start_with(conn, state, account, mfa_verified, false, meta).await
}

/// [`start`], saying whether the sign-in used a phishing-resistant factor (a passkey).
pub async fn start_with(
    conn: &mut PgConnection,
    state: &AppState,
    account: &Account,
    mfa_verified: bool,
    phishing_resistant: bool,
    meta: &RequestMeta,
) -> Result<TokenResponse, AuthError> {
    let now = state.clock.now();
    let expires_at = now + span(state.settings.auth.absolute_lifetime);
    let session_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO sessions (id, org_id, user_id, mfa_verified, created_at, last_seen_at, expires_at, client_ip, \
         user_agent, phishing_resistant) VALUES ($1, $2, $3, $4, $5, $5, $6, $7::inet, $8, $9)",
    )
    .bind(session_id)
    .bind(account.org_id)
    .bind(account.user_id)
    .bind(mfa_verified)
    .bind(now)
    .bind(expires_at)
    .bind(meta.client_ip.map(|ip| ip.to_string()))
    .bind(meta.user_agent.as_deref())
    .bind(phishing_resistant)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1")
        .bind(account.user_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let (_, refresh) = insert_refresh_token(conn, account.org_id, session_id, expires_at, now).await?;
    token_response(state, account, session_id, mfa_verified, refresh, now)
}

fn token_response(
    state: &AppState,
    account: &Account,
    session_id: Uuid,
    mfa_verified: bool,
    refresh_token: String,
    now: DateTime<Utc>,
) -> Result<TokenResponse, AuthError> {
    let ttl = span(state.settings.auth.access_token_ttl).num_seconds();
    let claims =
        state.jwt.claims(account.user_id, session_id, account.org_id, account.role.as_str(), now.timestamp(), ttl);
    let access_token = state.jwt.issue(&claims).map_err(AuthError::internal)?;
    Ok(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
        session_id,
        mfa_enrollment_required: account.role != ClaimRole::Patient && !mfa_verified,
        password_change_required: account.must_change_password,
    })
}

async fn insert_refresh_token(
    conn: &mut PgConnection,
    org_id: Uuid,
    session_id: Uuid,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Uuid, String), AuthError> {
    use secrecy::ExposeSecret;
    let (token, hash) = new_opaque_token();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO refresh_tokens (id, org_id, session_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(org_id)
    .bind(session_id)
    .bind(&hash[..])
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok((id, token.expose_secret().to_owned()))
}

type RefreshRow = (
    Uuid,
    Option<DateTime<Utc>>,
    Uuid,
    Uuid,
    Uuid,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
    bool,
    String,
    String,
    bool,
);

/// `POST /v1/auth/refresh`: rotates the refresh token and issues a new access token.
pub async fn refresh(state: &AppState, meta: &RequestMeta, presented: &str) -> Result<TokenResponse, AuthError> {
    let now = state.clock.now();
    let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
    let deny = |reason: &str| AuditEvent::new(Action::Refresh, "session", Outcome::Denied).reason(reason);
    let hash = hash_opaque_token(presented);
    let owner: Option<(Uuid, Uuid)> = match hash {
        None => None,
        Some(hash) => {
            sqlx::query_as("SELECT user_id, org_id FROM custos.auth_user_by_refresh_token($1)")
                .bind(&hash[..])
                .fetch_optional(&mut *tx)
                .await?
        }
    };
    let row: Option<RefreshRow> = match (owner, hash) {
        (Some((user_id, org_id)), Some(hash)) => {
            db::tx::set_claims(&mut tx, &Claims::auth_for(user_id, org_id, meta.request_id)).await?;
            sqlx::query_as(
                "SELECT rt.id, rt.used_at, s.id, s.user_id, s.org_id, s.revoked_at, s.last_seen_at, \
                        least(s.expires_at, rt.expires_at, s.created_at + $2::interval), \
                        s.mfa_verified, u.role::text, u.status::text, u.must_change_password \
                 FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id \
                 WHERE rt.token_hash = $1 FOR UPDATE OF rt, s",
            )
            .bind(&hash[..])
            .bind(span(state.settings.auth.absolute_lifetime))
            .fetch_optional(&mut *tx)
            .await?
        }
        _ => None,
    };
    let Some((
        token_id,
        used_at,
        session_id,
        user_id,
        org_id,
        revoked_at,
        last_seen,
        expires_at,
        mfa,
        role,
        status,
        mcp,
    )) = row
    else {
        audit::record(&mut tx, &meta.audit_context(), &deny("unknown refresh token")).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    };
    let role = ClaimRole::from_user_role(&role).ok_or(AuthError::Unauthorized)?;
    let account = Account { user_id, org_id, role, must_change_password: mcp };
    let ctx = account.audit_context(meta);
    if used_at.is_some() {
        // Reuse means the token leaked (or a client raced itself): kill the family.
        let revoked = revoke(&mut tx, session_id, "refresh token reuse detected", now).await?;
        let event =
            AuditEvent::new(Action::Security, "session", Outcome::Denied).resource(session_id).reason(if revoked {
                "refresh token reuse: session and all its tokens revoked"
            } else {
                "refresh token reuse on an already revoked session"
            });
        audit::record(&mut tx, &ctx, &event).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    }
    let idle_cutoff = now - span(state.settings.auth.idle_timeout);
    let dead = if revoked_at.is_some() {
        Some("session revoked")
    } else if expires_at <= now {
        // `expires_at` is the earliest of the session's end, the token's own end and the
        // session's start plus the configured absolute lifetime: a row whose end was pushed
        // out (or a lifetime since shortened) cannot be refreshed past the bound.
        Some("session past its absolute lifetime")
    } else if last_seen <= idle_cutoff {
        Some("session idle timeout")
    } else if status != "active" {
        Some("account disabled")
    } else {
        None
    };
    if let Some(reason) = dead {
        audit::record(&mut tx, &ctx, &deny(reason).resource(session_id)).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    }
    let (new_id, new_token) = insert_refresh_token(&mut tx, org_id, session_id, expires_at, now).await?;
    let changed =
        sqlx::query("UPDATE refresh_tokens SET used_at = $2, replaced_by = $3 WHERE id = $1 AND used_at IS NULL")
            .bind(token_id)
            .bind(now)
            .bind(new_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if changed != 1 {
        return Err(AuthError::Unauthorized);
    }
    let event = AuditEvent::new(Action::Refresh, "session", Outcome::Success).resource(session_id);
    audit::record(&mut tx, &ctx, &event).await?;
    let out = token_response(state, &account, session_id, mfa, new_token, now)?;
    tx.commit().await?;
    Ok(out)
}

/// Revokes one live session; false when it was already revoked (or is not visible).
pub async fn revoke(
    conn: &mut PgConnection,
    session_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, AuthError> {
    let n =
        sqlx::query("UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL")
            .bind(session_id)
            .bind(now)
            .bind(reason)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(n == 1)
}

/// Revokes every live session of `user_id` except `keep`; returns how many.
pub async fn revoke_all(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, AuthError> {
    Ok(sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
         WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
    )
    .bind(user_id)
    .bind(keep)
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected())
}
