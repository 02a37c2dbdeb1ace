//! Passkeys (WebAuthn, through `webauthn-rs`): the relying party, registering and managing a
//! staff member's passkeys, the ceremony state kept server-side, and the organization's
//! sign-in policies. Signing in with a passkey is `passkey_login`. See docs/passkeys.md.
//!
//! Ceremony state lives in `passkey_ceremonies`, never with the client: the client holds a
//! random ceremony token (the table keeps its SHA-256), the row is bound to what started it
//! (the session for a registration, the MFA challenge for a second factor), lives
//! [`CEREMONY_TTL_SECS`], and the finish DELETEs it before looking at the answer — so a finish
//! can be tried once, whatever its outcome, and two concurrent finishes cannot both use it.
//!
//! Registration needs the account password in the same request (re-authentication: a stolen
//! access token alone cannot add a passkey to the account); a wrong one counts toward the
//! lockout like any other guess from a session. Patients are not offered passkeys.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyRegistration, RegisterPublicKeyCredential, WebauthnError,
};

use super::AuthError;
use super::caller::AuthUser;
use super::tokens::{hash_opaque_token, new_opaque_token};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::db::ClaimRole;
use crate::state::AppState;

/// How long a ceremony may take, start to finish.
pub const CEREMONY_TTL_SECS: i64 = 300;
/// Passkeys one account may hold.
pub const MAX_PASSKEYS: i64 = 10;

/// The staff roles that may hold passkeys.
pub const STAFF: &[ClaimRole] = &[ClaimRole::Clinician, ClaimRole::Admin, ClaimRole::Auditor];

/// A ceremony started: the token to finish it with and the options for
/// `navigator.credentials.create/get` (`publicKey`).
#[derive(Debug, Serialize)]
pub struct Started<T> {
    pub ceremony_token: String,
    pub expires_in: i64,
    pub options: T,
}

/// One passkey as its owner sees it (no key material).
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub clone_detected_at: Option<DateTime<Utc>>,
}

/// The organization's sign-in policies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuthPolicy {
    /// Staff sessions opened without a passkey may only enrol one.
    pub require_phishing_resistant: bool,
    /// Staff may sign in with a passkey alone (discoverable credential, no password).
    pub allow_passwordless: bool,
}

/// Reads a stored passkey's counter and backup flags (webauthn-rs keeps them private; its
/// serialized form is the stable contract `passkey_credentials.passkey` stores).
pub fn flags_of(passkey: &serde_json::Value) -> (i64, bool, bool) {
    let cred = &passkey["cred"];
    (
        cred["counter"].as_i64().unwrap_or(0),
        cred["backup_eligible"].as_bool().unwrap_or(false),
        cred["backup_state"].as_bool().unwrap_or(false),
    )
}

/// Inserts a ceremony row; returns the client's token.
#[allow(clippy::too_many_arguments)]
pub(super) async fn store_ceremony(
    conn: &mut PgConnection,
    kind: &str,
    org_id: Option<Uuid>,
    user_id: Option<Uuid>,
    session_id: Option<Uuid>,
    challenge_id: Option<Uuid>,
    label: Option<&str>,
    state: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<String, AuthError> {
    let (token, hash) = new_opaque_token();
    sqlx::query(
        "INSERT INTO passkey_ceremonies \
         (id, token_hash, kind, org_id, user_id, session_id, challenge_id, label, state, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(Uuid::now_v7())
    .bind(&hash[..])
    .bind(kind)
    .bind(org_id)
    .bind(user_id)
    .bind(session_id)
    .bind(challenge_id)
    .bind(label)
    .bind(state)
    .bind(now)
    .bind(now + chrono::Duration::seconds(CEREMONY_TTL_SECS))
    .execute(conn)
    .await?;
    Ok(token.expose_secret().to_owned())
}

/// A consumed ceremony.
#[derive(sqlx::FromRow)]
pub(super) struct Ceremony {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub challenge_id: Option<Uuid>,
    pub label: Option<String>,
    pub state: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

/// Takes the ceremony of `token` (of `kind`, visible to the transaction's claims) out of the
/// table: it cannot be finished twice. `None`: unknown, already used, or expired.
pub(super) async fn consume_ceremony(
    conn: &mut PgConnection,
    kind: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Ceremony>, AuthError> {
    let Some(hash) = hash_opaque_token(token) else { return Ok(None) };
    let row: Option<Ceremony> = sqlx::query_as(
        "DELETE FROM passkey_ceremonies WHERE token_hash = $1 AND kind = $2 \
         RETURNING id, user_id, session_id, challenge_id, label, state, expires_at",
    )
    .bind(&hash[..])
    .bind(kind)
    .fetch_optional(conn)
    .await?;
    Ok(row.filter(|c| c.expires_at > now))
}

/// A short, safe description of why webauthn-rs refused a ceremony (for the audit reason).
pub fn refusal_reason(e: &WebauthnError) -> &'static str {
    match e {
        WebauthnError::InvalidRPOrigin => "wrong origin",
        WebauthnError::InvalidRPIDHash => "wrong relying party id",
        WebauthnError::UserNotVerified => "user verification missing",
        WebauthnError::CredentialPossibleCompromise => "sign counter did not move forward (cloned credential?)",
        WebauthnError::InvalidUserUniqueId => "no or unknown user handle",
        WebauthnError::MismatchedChallenge => "challenge mismatch",
        WebauthnError::CredentialNotFound => "credential not allowed for this ceremony",
        _ => "invalid WebAuthn response",
    }
}

/// The 422 every refused ceremony answers (the reason is in the audit event only).
pub fn ceremony_refused() -> AuthError {
    AuthError::validation("credential", "was not accepted for this ceremony")
}

fn staff_only(user: &AuthUser) -> Result<(), AuthError> {
    user.require_role(STAFF)
        .map_err(|_| AuthError::Forbidden { code: "forbidden", message: "passkeys are for staff accounts".into() })
}

async fn refuse(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    action: Action,
    resource: Option<Uuid>,
    reason: impl Into<String>,
) -> Result<(), AuthError> {
    let mut event = AuditEvent::new(action, "passkey", Outcome::Denied).reason(reason);
    if let Some(id) = resource {
        event = event.resource(id);
    }
    audit::record(conn, ctx, &event).await?;
    Ok(())
}

/// `POST /v1/me/passkeys/register/start {password, label}`: re-authenticates with the
/// password, then starts a registration bound to this session.
pub async fn register_start(
    state: &AppState,
    user: &AuthUser,
    password: SecretString,
    label: &str,
) -> Result<Started<CreationChallengeResponse>, AuthError> {
    staff_only(user)?;
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 {
        return Err(AuthError::validation("label", "must be 1 to 100 characters"));
    }
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user.user_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let checked = super::hashing::verify(state, password, Some(stored)).await?;
    let now = state.clock.now();
    let (mut tx, ctx) = (user.begin(&state.pool).await?.0, ctx);
    if !checked.matched {
        refuse(&mut tx, &ctx, Action::Mfa, None, "passkey registration refused: wrong password").await?;
        let escalation = super::lockout::count_session_failure(&mut tx, state, user, &ctx, now).await?;
        tx.commit().await?;
        if escalation != super::lockout::Escalation::None {
            return Err(AuthError::Unauthorized);
        }
        return Err(AuthError::Forbidden {
            code: "invalid_current_password",
            message: "the password is not correct".into(),
        });
    }
    let existing: Vec<Vec<u8>> = sqlx::query_scalar("SELECT credential_id FROM passkey_credentials WHERE user_id = $1")
        .bind(user.user_id)
        .fetch_all(&mut *tx)
        .await?;
    if existing.len() as i64 >= MAX_PASSKEYS {
        refuse(&mut tx, &ctx, Action::Mfa, None, "passkey registration refused: limit reached").await?;
        tx.commit().await?;
        return Err(AuthError::Conflict(format!("an account holds at most {MAX_PASSKEYS} passkeys")));
    }
    sqlx::query("DELETE FROM passkey_ceremonies WHERE user_id = $1 AND kind = 'register' AND expires_at <= $2")
        .bind(user.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let email = super::account::email_of(&mut tx, state, user.user_id).await?;
    let exclude = existing.into_iter().collect::<Vec<_>>();
    let (options, reg) = state
        .webauthn
        .start_passkey_registration(user.user_id, &email, &email, Some(exclude))
        .map_err(AuthError::internal)?;
    let reg_state = serde_json::to_value(&reg).map_err(AuthError::internal)?;
    let token = store_ceremony(
        &mut tx,
        "register",
        Some(user.org_id),
        Some(user.user_id),
        Some(user.session_id),
        None,
        Some(label),
        reg_state,
        now,
    )
    .await?;
    let event = AuditEvent::new(Action::Mfa, "passkey", Outcome::Success).reason("passkey registration started");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(Started { ceremony_token: token, expires_in: CEREMONY_TTL_SECS, options })
}

/// `POST /v1/me/passkeys/register/finish {ceremony_token, credential}`: checks the
/// authenticator's answer (origin, RP id, challenge, user verification) and stores the passkey.
pub async fn register_finish(
    state: &AppState,
    user: &AuthUser,
    ceremony_token: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<PasskeyInfo, AuthError> {
    staff_only(user)?;
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let ceremony = consume_ceremony(&mut tx, "register", ceremony_token, now).await?;
    let Some(ceremony) = ceremony.filter(|c| c.user_id == Some(user.user_id) && c.session_id == Some(user.session_id))
    else {
        refuse(&mut tx, &ctx, Action::Mfa, None, "passkey registration refused: unknown, used or expired ceremony")
            .await?;
        tx.commit().await?;
        return Err(AuthError::Conflict("no passkey registration in progress (start again)".into()));
    };
    let reg: PasskeyRegistration = serde_json::from_value(ceremony.state).map_err(AuthError::internal)?;
    let passkey: Passkey = match state.webauthn.finish_passkey_registration(credential, &reg) {
        Ok(p) => p,
        Err(e) => {
            let reason = format!("passkey registration refused: {}", refusal_reason(&e));
            refuse(&mut tx, &ctx, Action::Mfa, Some(ceremony.id), reason).await?;
            tx.commit().await?;
            return Err(ceremony_refused());
        }
    };
    let stored = serde_json::to_value(&passkey).map_err(AuthError::internal)?;
    let (sign_count, backup_eligible, backup_state) = flags_of(&stored);
    let id = Uuid::now_v7();
    let label = ceremony.label.unwrap_or_else(|| "passkey".into());
    let inserted = sqlx::query(
        "INSERT INTO passkey_credentials \
         (id, org_id, user_id, credential_id, passkey, sign_count, backup_eligible, backup_state, label, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (credential_id) DO NOTHING",
    )
    .bind(id)
    .bind(user.org_id)
    .bind(user.user_id)
    .bind(AsRef::<[u8]>::as_ref(passkey.cred_id()))
    .bind(&stored)
    .bind(sign_count)
    .bind(backup_eligible)
    .bind(backup_state)
    .bind(&label)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted != 1 {
        refuse(&mut tx, &ctx, Action::Mfa, None, "passkey registration refused: credential already registered").await?;
        tx.commit().await?;
        return Err(AuthError::Conflict("this passkey is already registered".into()));
    }
    let event = AuditEvent::new(Action::Mfa, "passkey", Outcome::Success).resource(id).reason("passkey registered");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(PasskeyInfo {
        id,
        label,
        created_at: now,
        last_used_at: None,
        sign_count,
        backup_eligible,
        backup_state,
        clone_detected_at: None,
    })
}

const INFO_COLUMNS: &str =
    "id, label, created_at, last_used_at, sign_count, backup_eligible, backup_state, clone_detected_at";

/// `GET /v1/me/passkeys`.
pub async fn list(state: &AppState, user: &AuthUser) -> Result<Vec<PasskeyInfo>, AuthError> {
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let sql = format!("SELECT {INFO_COLUMNS} FROM passkey_credentials WHERE user_id = $1 ORDER BY created_at, id");
    let rows: Vec<PasskeyInfo> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user.user_id).fetch_all(&mut *tx).await?;
    let event = AuditEvent::new(Action::Read, "passkey", Outcome::Success).reason("own passkeys listed");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(rows)
}

/// `DELETE /v1/me/passkeys/{id}`.
pub async fn delete(state: &AppState, user: &AuthUser, id: Uuid) -> Result<(), AuthError> {
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let n = if user.role == ClaimRole::Patient {
        0
    } else {
        sqlx::query("DELETE FROM passkey_credentials WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user.user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };
    if n != 1 {
        refuse(&mut tx, &ctx, Action::Delete, Some(id), "passkey deletion refused: no such passkey").await?;
        tx.commit().await?;
        return Err(AuthError::NotFound);
    }
    let event = AuditEvent::new(Action::Delete, "passkey", Outcome::Success).resource(id).reason("passkey deleted");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// The sign-in policies of `org_id`, as seen by `conn`'s claims.
pub async fn policy_of(conn: &mut PgConnection, org_id: Uuid) -> Result<AuthPolicy, AuthError> {
    let policy: Option<AuthPolicy> =
        sqlx::query_as("SELECT require_phishing_resistant, allow_passwordless FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(conn)
            .await?;
    policy.ok_or_else(|| AuthError::internal(anyhow::anyhow!("organization not visible")))
}

fn admin_only(user: &AuthUser) -> Result<(), AuthError> {
    user.require_role(&[ClaimRole::Admin])
}

/// `GET /v1/admin/auth-policy`.
pub async fn get_policy(state: &AppState, user: &AuthUser) -> Result<AuthPolicy, AuthError> {
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    if let Err(e) = admin_only(user) {
        let event = AuditEvent::new(Action::Admin, "organization", Outcome::Denied)
            .resource(user.org_id)
            .reason("sign-in policy read refused: not an admin");
        audit::record(&mut tx, &ctx, &event).await?;
        tx.commit().await?;
        return Err(e);
    }
    let policy = policy_of(&mut tx, user.org_id).await?;
    let event = AuditEvent::new(Action::Read, "organization", Outcome::Success)
        .resource(user.org_id)
        .reason("sign-in policy read");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(policy)
}

/// `PUT /v1/admin/auth-policy`: sets both policies; the event names the old and new values.
pub async fn set_policy(state: &AppState, user: &AuthUser, new: AuthPolicy) -> Result<AuthPolicy, AuthError> {
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    if let Err(e) = admin_only(user) {
        let event = AuditEvent::new(Action::Admin, "organization", Outcome::Denied)
            .resource(user.org_id)
            .reason("sign-in policy change refused: not an admin");
        audit::record(&mut tx, &ctx, &event).await?;
        tx.commit().await?;
        return Err(e);
    }
    let old = policy_of(&mut tx, user.org_id).await?;
    sqlx::query("UPDATE organizations SET require_phishing_resistant = $2, allow_passwordless = $3 WHERE id = $1")
        .bind(user.org_id)
        .bind(new.require_phishing_resistant)
        .bind(new.allow_passwordless)
        .execute(&mut *tx)
        .await?;
    let event = AuditEvent::new(Action::Admin, "organization", Outcome::Success).resource(user.org_id).reason(format!(
        "sign-in policy: require_phishing_resistant {} → {}, allow_passwordless {} → {}",
        old.require_phishing_resistant, new.require_phishing_resistant, old.allow_passwordless, new.allow_passwordless
    ));
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(new)
}
