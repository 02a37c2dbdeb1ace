//! Admin user management within the admin's own organization: create staff accounts with a
//! one-time password, list them, disable / enable / unlock, reset MFA. RLS confines every
//! statement to the admin's organization; the queries also say so explicitly. There is no
//! role-change operation, so nobody can raise themselves.

use chrono::{DateTime, Utc};
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::caller::AuthUser;
use super::error::AuthError;
use super::sessions;
use crate::audit::{self, Action, AuditEvent, Outcome};
use crate::crypto::BlindIndexKind;
use crate::db::ClaimRole;
use crate::domain::{Email, PersonName};
use crate::state::AppState;

/// Unambiguous characters (no 0/O, 1/l/I): 20 of them carry ~115 bits.
const OTP_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// A random one-time password (bootstrap, admin-created accounts); must be changed at first login.
pub fn one_time_password() -> SecretString {
    let mut rng = rand::rng();
    let s: String = (0..20).map(|_| OTP_ALPHABET[rng.random_range(0..OTP_ALPHABET.len())] as char).collect();
    SecretString::from(s)
}

/// A new account with its one-time password (Debug redacts the password).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub id: Uuid,
    pub email: String,
    pub role: &'static str,
    pub display_name: String,
    /// Shown once; the user must change it at first login.
    pub one_time_password: String,
    pub must_change_password: bool,
}

impl std::fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedUser")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("one_time_password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `POST /v1/admin/users`.
pub async fn create(
    state: &AppState,
    admin: &AuthUser,
    email: &str,
    role: &str,
    display_name: &str,
) -> Result<CreatedUser, AuthError> {
    admin.require_role(&[ClaimRole::Admin])?;
    let role = match ClaimRole::from_user_role(role) {
        Some(r @ (ClaimRole::Clinician | ClaimRole::Admin | ClaimRole::Auditor)) => r,
        _ => {
            return Err(AuthError::validation(
                "role",
                "must be one of: clinician, admin, auditor (patients register from an invite)",
            ));
        }
    };
    let email = Email::parse(email)?;
    let name = PersonName::parse(display_name).map_err(|e| e.with_field("display_name"))?;
    let password = one_time_password();
    let hash = super::hashing::hash(state, password.clone()).await?;

    let id = Uuid::now_v7();
    let keyring = &state.crypto.keyring;
    let email_enc = keyring.seal_str("users", "email_enc", id, email.as_str()).map_err(AuthError::internal)?;
    let name_enc = keyring.seal_str("users", "display_name_enc", id, name.as_str()).map_err(AuthError::internal)?;
    let bidx = state.crypto.blind.index(BlindIndexKind::Email, email.as_str());
    let (mut tx, ctx) = admin.begin(&state.pool).await?;
    sqlx::query(
        "INSERT INTO users (id, org_id, role, email_enc, email_bidx, display_name_enc, password_hash, must_change_password, created_by) \
         VALUES ($1, $2, $3::user_role, $4, $5, $6, $7, true, $8)",
    )
    .bind(id)
    .bind(admin.org_id)
    .bind(role.as_str())
    .bind(&email_enc)
    .bind(&bidx[..])
    .bind(&name_enc)
    .bind(&hash)
    .bind(admin.user_id)
    .execute(&mut *tx)
    .await
    .map_err(|e| AuthError::duplicate(e, "a user with that email already exists in your organization"))?;
    let event = AuditEvent::new(Action::Admin, "user", Outcome::Success)
        .resource(id)
        .reason(format!("user created ({})", role.as_str()));
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(CreatedUser {
        id,
        email: email.as_str().to_owned(),
        role: role.as_str(),
        display_name: name.as_str().to_owned(),
        one_time_password: password.expose_secret().to_owned(),
        must_change_password: true,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserSummary {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub role: String,
    pub status: String,
    pub mfa_enabled: bool,
    pub locked: bool,
    pub must_change_password: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<Uuid>,
}

type ListRow = (
    Uuid,
    Vec<u8>,
    Option<Vec<u8>>,
    String,
    String,
    bool,
    Option<DateTime<Utc>>,
    bool,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// `GET /v1/admin/users?limit=&after=`: keyset pagination by (created_at, id).
pub async fn list(state: &AppState, admin: &AuthUser, limit: i64, after: Option<Uuid>) -> Result<UserPage, AuthError> {
    admin.require_role(&[ClaimRole::Admin])?;
    let now = state.clock.now();
    let (mut tx, ctx) = admin.begin(&state.pool).await?;
    let rows: Vec<ListRow> = sqlx::query_as(
        "SELECT u.id, u.email_enc, u.display_name_enc, u.role::text, u.status::text, \
                EXISTS (SELECT 1 FROM mfa_credentials m WHERE m.user_id = u.id AND m.confirmed_at IS NOT NULL), \
                u.locked_until, u.must_change_password, u.last_login_at, u.created_at \
         FROM users u WHERE u.org_id = $1 \
           AND ($2::uuid IS NULL OR (u.created_at, u.id) > (SELECT a.created_at, a.id FROM users a WHERE a.id = $2)) \
         ORDER BY u.created_at, u.id LIMIT $3",
    )
    .bind(admin.org_id)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    let more = rows.len() as i64 > limit;
    let keyring = &state.crypto.keyring;
    let mut users = Vec::with_capacity(rows.len());
    for (id, email_enc, name_enc, role, status, mfa, locked_until, mcp, last_login_at, created_at) in
        rows.into_iter().take(usize::try_from(limit).unwrap_or(0))
    {
        let email =
            keyring.open_string_fresh("users", "email_enc", id, &email_enc).await.map_err(AuthError::internal)?;
        let display_name = match name_enc {
            Some(n) => Some(
                keyring
                    .open_string_fresh("users", "display_name_enc", id, &n)
                    .await
                    .map_err(AuthError::internal)?
                    .to_string(),
            ),
            None => None,
        };
        users.push(UserSummary {
            id,
            email: email.to_string(),
            display_name,
            role,
            status,
            mfa_enabled: mfa,
            locked: locked_until.is_some_and(|t| t > now),
            must_change_password: mcp,
            last_login_at,
            created_at,
        });
    }
    let next_after = if more { users.last().map(|u| u.id) } else { None };
    let event =
        AuditEvent::new(Action::Read, "user", Outcome::Success).reason(format!("user list ({} rows)", users.len()));
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(UserPage { users, next_after })
}

/// What an admin does to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    Disable,
    Enable,
    Unlock,
    ResetMfa,
    /// Deletes every passkey of the user (a lost or compromised authenticator) and ends
    /// their sessions; they sign in with their other factor and enrol a new one.
    ResetPasskeys,
}

impl UserAction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "disable" => Some(Self::Disable),
            "enable" => Some(Self::Enable),
            "unlock" => Some(Self::Unlock),
            "reset-mfa" => Some(Self::ResetMfa),
            "reset-passkeys" => Some(Self::ResetPasskeys),
            _ => None,
        }
    }
}

/// `POST /v1/admin/users/{id}/disable|enable|unlock|reset-mfa|reset-passkeys`.
pub async fn act(state: &AppState, admin: &AuthUser, target: Uuid, action: UserAction) -> Result<(), AuthError> {
    admin.require_role(&[ClaimRole::Admin])?;
    // Every action on oneself goes through another admin (a locked or disabled admin cannot
    // lift their own restriction; the column guards refuse it too).
    if target == admin.user_id {
        return Err(AuthError::Forbidden {
            code: "self_action",
            message: "ask another admin to do this to your account".into(),
        });
    }
    let now = state.clock.now();
    let (mut tx, ctx) = admin.begin(&state.pool).await?;
    let set = match action {
        UserAction::Disable => "status = 'disabled'",
        UserAction::Enable => "status = 'active', failed_attempts = 0, consecutive_failures = 0, locked_until = NULL",
        UserAction::Unlock => "failed_attempts = 0, consecutive_failures = 0, locked_until = NULL",
        // Touch the row so "not found" is detected the same way; MFA rows are deleted below.
        UserAction::ResetMfa | UserAction::ResetPasskeys => "failed_attempts = failed_attempts",
    };
    let sql = format!("UPDATE users SET {set} WHERE id = $1 AND org_id = $2");
    let n =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(target).bind(admin.org_id).execute(&mut *tx).await?.rows_affected();
    if n != 1 {
        // Unknown, or another organization's user (RLS hides it): record the refusal.
        drop(tx);
        let (mut tx, ctx) = admin.begin(&state.pool).await?;
        let event = AuditEvent::new(Action::Admin, "user", Outcome::Denied)
            .resource(target)
            .reason("admin action on an unknown user or a user of another organization");
        audit::record(&mut tx, &ctx, &event).await?;
        tx.commit().await?;
        return Err(AuthError::NotFound);
    }
    let reason = match action {
        UserAction::Disable => {
            let k = sessions::revoke_all(&mut tx, target, None, "account disabled", now).await?;
            format!("user disabled; {k} session(s) revoked")
        }
        UserAction::Enable => "user enabled".to_owned(),
        UserAction::Unlock => "user unlocked".to_owned(),
        UserAction::ResetMfa => {
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(target).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM mfa_credentials WHERE user_id = $1").bind(target).execute(&mut *tx).await?;
            let k = sessions::revoke_all(&mut tx, target, None, "MFA reset by admin", now).await?;
            format!("MFA reset; {k} session(s) revoked")
        }
        UserAction::ResetPasskeys => {
            let n = sqlx::query("DELETE FROM passkey_credentials WHERE user_id = $1")
                .bind(target)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let k = sessions::revoke_all(&mut tx, target, None, "passkeys reset by admin", now).await?;
            format!("passkeys reset: {n} passkey(s) deleted; {k} session(s) revoked")
        }
    };
    let audit_action =
        if matches!(action, UserAction::ResetMfa | UserAction::ResetPasskeys) { Action::Mfa } else { Action::Admin };
    let event = AuditEvent::new(audit_action, "user", Outcome::Success).resource(target).reason(reason);
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(())
}
