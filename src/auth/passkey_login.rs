//! Signing in with a passkey: as the second factor after the password step
//! (`POST /v1/auth/passkey/start|finish` with the MFA challenge token, beside TOTP and recovery
//! codes at `/v1/auth/mfa/verify`), and passwordless with a discoverable credential
//! (`POST /v1/auth/passkey/passwordless/start|finish`) where the organization allows it.
//!
//! Both open a session marked `phishing_resistant` (see `policies` on the organization and the
//! extractor's `passkey_enrollment_required`). A refused assertion counts toward the account
//! lockout like a wrong code. The sign counter is checked here as well as by webauthn-rs,
//! against the value stored *now* (row locked), not the one copied into the ceremony at its
//! start: an assertion whose counter does not move forward is a cloned credential — refused,
//! the passkey marked (`clone_detected_at`, unusable from then on) and the event recorded.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PublicKeyCredential,
    RequestChallengeResponse, WebauthnError,
};

use super::AuthError;
use super::caller::RequestMeta;
use super::login::{self, UserRow};
use super::passkeys::{self, Started, consume_ceremony, refusal_reason, store_ceremony};
use super::sessions::{self, TokenResponse};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::db::{self, Claims};
use crate::state::AppState;

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// The reason recorded when the passkey step names no live MFA challenge.
const PASSKEY_STEP_REFUSED: &str = "passkey step: unknown, used or expired MFA token";

/// The usable passkeys of a user (not marked as cloned).
async fn passkeys_of(tx: &mut Tx, user_id: Uuid) -> Result<Vec<Passkey>, AuthError> {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT passkey FROM passkey_credentials WHERE user_id = $1 AND clone_detected_at IS NULL ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(|v| serde_json::from_value(v).map_err(AuthError::internal)).collect()
}

/// `POST /v1/auth/passkey/start {mfa_token}`.
pub async fn second_factor_start(
    state: &AppState,
    meta: &RequestMeta,
    mfa_token: &str,
) -> Result<Started<RequestChallengeResponse>, AuthError> {
    let now = state.clock.now();
    let (mut tx, challenge_id, user_id, org_id) =
        login::open_challenge(state, meta, mfa_token, now, PASSKEY_STEP_REFUSED).await?;
    let ctx = AuditContext { org_id: Some(org_id), ..meta.audit_context() };
    let keys = passkeys_of(&mut tx, user_id).await?;
    if keys.is_empty() {
        let event = AuditEvent::new(Action::Mfa, "user", Outcome::Denied)
            .resource(user_id)
            .reason("passkey step refused: no passkey registered");
        audit::record(&mut tx, &ctx, &event).await?;
        tx.commit().await?;
        return Err(AuthError::Conflict("no passkey is registered for this account".into()));
    }
    let (options, auth) = state.webauthn.start_passkey_authentication(&keys).map_err(AuthError::internal)?;
    let auth_state = serde_json::to_value(&auth).map_err(AuthError::internal)?;
    let token = store_ceremony(
        &mut tx,
        "second_factor",
        Some(org_id),
        Some(user_id),
        None,
        Some(challenge_id),
        None,
        auth_state,
        now,
    )
    .await?;
    let event =
        AuditEvent::new(Action::Mfa, "user", Outcome::Success).resource(user_id).reason("passkey sign-in started");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(Started { ceremony_token: token, expires_in: passkeys::CEREMONY_TTL_SECS, options })
}

/// What checking an assertion against the stored passkey found.
enum Checked {
    Ok(Uuid),
    Refused(String),
}

/// Checks the sign counter against the stored one (row locked) and stores the new counter,
/// flags and last use. A counter that does not move forward marks the passkey as cloned.
async fn record_use(tx: &mut Tx, result: &AuthenticationResult, now: DateTime<Utc>) -> Result<Checked, AuthError> {
    let row: Option<(Uuid, serde_json::Value, i64)> = sqlx::query_as(
        "SELECT id, passkey, sign_count FROM passkey_credentials \
         WHERE credential_id = $1 AND clone_detected_at IS NULL FOR UPDATE",
    )
    .bind(AsRef::<[u8]>::as_ref(result.cred_id()))
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id, stored, count)) = row else {
        return Ok(Checked::Refused("passkey no longer registered".into()));
    };
    let presented = i64::from(result.counter());
    if (presented > 0 || count > 0) && presented <= count {
        sqlx::query("UPDATE passkey_credentials SET clone_detected_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        return Ok(Checked::Refused(format!(
            "{}: presented {presented}, stored {count}; passkey {id} disabled",
            refusal_reason(&WebauthnError::CredentialPossibleCompromise)
        )));
    }
    let mut passkey: Passkey = serde_json::from_value(stored).map_err(AuthError::internal)?;
    passkey.update_credential(result);
    let updated = serde_json::to_value(&passkey).map_err(AuthError::internal)?;
    sqlx::query(
        "UPDATE passkey_credentials SET passkey = $2, sign_count = $3, backup_eligible = $4, backup_state = $5, \
         last_used_at = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(&updated)
    .bind(presented.max(count))
    .bind(result.backup_eligible())
    .bind(result.backup_state())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(Checked::Ok(id))
}

/// Records a refused assertion against `user` (counts toward the lockout) and, for the
/// second factor, against the MFA challenge.
async fn refuse_assertion(
    tx: &mut Tx,
    state: &AppState,
    ctx: &AuditContext,
    user: &UserRow,
    challenge_id: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    login::fail(tx, state, ctx, user, Action::Mfa, &format!("passkey refused: {reason}"), true, now).await?;
    if let Some(id) = challenge_id {
        login::count_challenge_failure(tx, id, now).await?;
    }
    Ok(())
}

/// `POST /v1/auth/passkey/finish {mfa_token, ceremony_token, credential}` → session.
pub async fn second_factor_finish(
    state: &AppState,
    meta: &RequestMeta,
    mfa_token: &str,
    ceremony_token: &str,
    credential: &PublicKeyCredential,
) -> Result<TokenResponse, AuthError> {
    let now = state.clock.now();
    let (mut tx, challenge_id, user_id, _) =
        login::open_challenge(state, meta, mfa_token, now, PASSKEY_STEP_REFUSED).await?;
    let user = login::lock_user(&mut tx, user_id).await?;
    let ctx = login::fail_context(meta, &user);
    let ceremony = consume_ceremony(&mut tx, "second_factor", ceremony_token, now)
        .await?
        .filter(|c| c.challenge_id == Some(challenge_id) && c.user_id == Some(user_id));
    let Some(ceremony) = ceremony else {
        refuse_assertion(&mut tx, state, &ctx, &user, Some(challenge_id), "unknown, used or expired ceremony", now)
            .await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    };
    if let Some(reason) = user.blocked(now) {
        login::fail(&mut tx, state, &ctx, &user, Action::Mfa, reason, false, now).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    }
    let auth: PasskeyAuthentication = serde_json::from_value(ceremony.state).map_err(AuthError::internal)?;
    let checked = match state.webauthn.finish_passkey_authentication(credential, &auth) {
        Ok(result) if result.user_verified() => record_use(&mut tx, &result, now).await?,
        Ok(_) => Checked::Refused(refusal_reason(&WebauthnError::UserNotVerified).into()),
        Err(e) => Checked::Refused(refusal_reason(&e).into()),
    };
    let passkey_id = match checked {
        Checked::Ok(id) => id,
        Checked::Refused(reason) => {
            refuse_assertion(&mut tx, state, &ctx, &user, Some(challenge_id), &reason, now).await?;
            tx.commit().await?;
            return Err(AuthError::Unauthorized);
        }
    };
    if !login::use_challenge(&mut tx, challenge_id, now).await? {
        return Err(AuthError::Unauthorized);
    }
    complete(tx, state, meta, &user, passkey_id, "password and passkey").await
}

/// The end of a successful passkey sign-in: counters reset, events, a phishing-resistant session.
async fn complete(
    mut tx: Tx,
    state: &AppState,
    meta: &RequestMeta,
    user: &UserRow,
    passkey_id: Uuid,
    how: &str,
) -> Result<TokenResponse, AuthError> {
    login::reset_failures(&mut tx, user.id).await?;
    let account = user.account()?;
    let ctx = account.audit_context(meta);
    let event = AuditEvent::new(Action::Mfa, "passkey", Outcome::Success).resource(passkey_id).reason("passkey");
    audit::record(&mut tx, &ctx, &event).await?;
    let tokens = sessions::start_with(&mut tx, state, &account, true, true, meta).await?;
    let event = AuditEvent::new(Action::Login, "session", Outcome::Success).resource(tokens.session_id).reason(how);
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// `POST /v1/auth/passkey/passwordless/start`: a discoverable-credential challenge (nobody is
/// known yet; the ceremony is bound to its token only).
pub async fn passwordless_start(
    state: &AppState,
    meta: &RequestMeta,
) -> Result<Started<RequestChallengeResponse>, AuthError> {
    let now = state.clock.now();
    let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
    sqlx::query("DELETE FROM passkey_ceremonies WHERE kind = 'passwordless' AND expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let (options, auth) = state.webauthn.start_discoverable_authentication().map_err(AuthError::internal)?;
    let auth_state = serde_json::to_value(&auth).map_err(AuthError::internal)?;
    let token = store_ceremony(&mut tx, "passwordless", None, None, None, None, None, auth_state, now).await?;
    let event = AuditEvent::new(Action::Login, "passkey", Outcome::Success).reason("passwordless sign-in started");
    audit::record(&mut tx, &meta.audit_context(), &event).await?;
    tx.commit().await?;
    Ok(Started { ceremony_token: token, expires_in: passkeys::CEREMONY_TTL_SECS, options })
}

/// `POST /v1/auth/passkey/passwordless/finish {ceremony_token, credential}` → session, when the
/// account's organization allows passwordless sign-in.
pub async fn passwordless_finish(
    state: &AppState,
    meta: &RequestMeta,
    ceremony_token: &str,
    credential: &PublicKeyCredential,
) -> Result<TokenResponse, AuthError> {
    let now = state.clock.now();
    let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
    let ceremony = consume_ceremony(&mut tx, "passwordless", ceremony_token, now).await?;
    let anonymous_refusal =
        |reason: &'static str| AuditEvent::new(Action::LoginFailed, "passkey", Outcome::Denied).reason(reason);
    let Some(ceremony) = ceremony else {
        audit::record(
            &mut tx,
            &meta.audit_context(),
            &anonymous_refusal("passwordless: unknown, used or expired ceremony"),
        )
        .await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    };
    let identified = state.webauthn.identify_discoverable_authentication(credential);
    let Ok((handle, cred_id)) = identified else {
        audit::record(&mut tx, &meta.audit_context(), &anonymous_refusal("passwordless: no user handle")).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    };
    let owner: Option<(Uuid, Uuid)> = sqlx::query_as("SELECT user_id, org_id FROM custos.auth_user_by_passkey($1)")
        .bind(cred_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((user_id, org_id)) = owner.filter(|(user_id, _)| *user_id == handle) else {
        audit::record(&mut tx, &meta.audit_context(), &anonymous_refusal("passwordless: unknown credential")).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    };
    db::tx::set_claims(&mut tx, &Claims::auth_for(user_id, org_id, meta.request_id)).await?;
    let user = login::lock_user(&mut tx, user_id).await?;
    let ctx = login::fail_context(meta, &user);
    if let Some(reason) = user.blocked(now) {
        login::fail(&mut tx, state, &ctx, &user, Action::LoginFailed, reason, false, now).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    }
    let keys = passkeys_of(&mut tx, user_id).await?;
    let Some(key) = keys.iter().find(|k| AsRef::<[u8]>::as_ref(k.cred_id()) == cred_id) else {
        refuse_assertion(&mut tx, state, &ctx, &user, None, "passkey disabled", now).await?;
        tx.commit().await?;
        return Err(AuthError::Unauthorized);
    };
    let auth: DiscoverableAuthentication = serde_json::from_value(ceremony.state).map_err(AuthError::internal)?;
    let checked = match state.webauthn.finish_discoverable_authentication_v2(credential, auth, key) {
        Ok(result) if result.user_verified() => record_use(&mut tx, &result, now).await?,
        Ok(_) => Checked::Refused(refusal_reason(&WebauthnError::UserNotVerified).into()),
        Err(e) => Checked::Refused(refusal_reason(&e).into()),
    };
    let passkey_id = match checked {
        Checked::Ok(id) => id,
        Checked::Refused(reason) => {
            refuse_assertion(&mut tx, state, &ctx, &user, None, &reason, now).await?;
            tx.commit().await?;
            return Err(AuthError::Unauthorized);
        }
    };
    // Checked after the assertion (whose counter is kept either way), so that only the
    // credential's holder learns the organization's policy.
    if !passkeys::policy_of(&mut tx, org_id).await?.allow_passwordless {
        let event = AuditEvent::new(Action::LoginFailed, "user", Outcome::Denied)
            .resource(user_id)
            .reason("passwordless sign-in refused: not allowed by the organization's policy");
        audit::record(&mut tx, &ctx, &event).await?;
        tx.commit().await?;
        return Err(AuthError::Forbidden {
            code: "passwordless_not_allowed",
            message: "your organization requires a password before the passkey".into(),
        });
    }
    complete(tx, state, meta, &user, passkey_id, "passwordless passkey").await
}
