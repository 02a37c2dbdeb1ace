//! Patient portal accounts: an admin or a clinician with access to the patient issues a
//! single-use invite (opaque code, stored hashed, valid 72 hours); the patient redeems it
//! with `POST /v1/auth/register`, which creates a `patient` account linked to the record.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::extractor::{AuthUser, RequestMeta};
use super::password::PasswordPolicy;
use super::tokens::{hash_opaque_token, new_opaque_token};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::crypto::BlindIndexKind;
use crate::db::{self, ClaimRole, Claims};
use crate::domain::Email;
use crate::error::ApiError;
use crate::startup::AppState;

/// How long an invite stays valid.
pub const INVITE_TTL_HOURS: i64 = 72;

#[derive(Debug, Serialize)]
pub struct Invite {
    pub invite_id: Uuid,
    /// Shown once; hand it to the patient.
    pub invite_code: String,
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/patients/{id}/invite`.
pub async fn issue(state: &AppState, user: &AuthUser, patient_id: Uuid) -> Result<Invite, ApiError> {
    user.require_role(&[ClaimRole::Admin, ClaimRole::Clinician])?;
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    // RLS: only patients this caller may see (admins: their org; clinicians: their care team).
    let account: Option<Option<Uuid>> = sqlx::query_scalar("SELECT user_id FROM patients WHERE id = $1")
        .bind(patient_id)
        .fetch_optional(&mut *tx)
        .await?;
    match account {
        None => return Err(ApiError::NotFound),
        Some(Some(_)) => return Err(ApiError::Conflict("this patient already has a portal account".into())),
        Some(None) => {}
    }
    let (code, hash) = new_opaque_token();
    let id = Uuid::now_v7();
    let expires_at = now + chrono::Duration::hours(INVITE_TTL_HOURS);
    sqlx::query(
        "INSERT INTO patient_invites (id, org_id, patient_id, code_hash, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(user.org_id)
    .bind(patient_id)
    .bind(&hash[..])
    .bind(user.user_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new(Action::Create, "patient_invite", Outcome::Success)
        .resource(id)
        .patient(patient_id)
        .reason("invite issued");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(Invite { invite_id: id, invite_code: code.expose_secret().to_owned(), expires_at })
}

type InviteRow = (Uuid, Uuid, Uuid, DateTime<Utc>, Option<DateTime<Utc>>);

/// `POST /v1/auth/register`: redeem an invite. Returns the new user id.
pub async fn register(
    state: &AppState,
    meta: &RequestMeta,
    code: &str,
    email: &str,
    password: SecretString,
) -> Result<Uuid, ApiError> {
    let email = Email::parse(email)?;
    let hash = hash_opaque_token(code);
    let find = async |tx: &mut sqlx::PgConnection, lock: bool| -> Result<Option<InviteRow>, ApiError> {
        let Some(hash) = hash else { return Ok(None) };
        let sql = format!(
            "SELECT id, org_id, patient_id, expires_at, used_at FROM patient_invites WHERE code_hash = $1{}",
            if lock { " FOR UPDATE" } else { "" }
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&hash[..]).fetch_optional(tx).await?)
    };
    let now = state.clock.now();
    let usable = |row: &Option<InviteRow>| row.as_ref().filter(|r| r.4.is_none() && r.3 > now).copied();

    let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
    let Some(_) = usable(&find(&mut tx, false).await?) else {
        let event = AuditEvent::new(Action::Create, "user", Outcome::Denied)
            .reason("registration: unknown, used or expired invite");
        audit::record(&mut tx, &meta.audit_context(), &event).await?;
        tx.commit().await?;
        return Err(ApiError::BadRequest("the invite code is invalid, used or expired".into()));
    };
    tx.commit().await?;

    let local = email.as_str().split('@').next().unwrap_or_default().to_owned();
    let password_hash = super::hashing::check_and_hash(state, password, PasswordPolicy::MFA_OPTIONAL, local).await?;

    let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
    // Re-read under lock: two registrations racing for one invite, only one wins.
    let Some((invite_id, org_id, patient_id, _, _)) = usable(&find(&mut tx, true).await?) else {
        return Err(ApiError::BadRequest("the invite code is invalid, used or expired".into()));
    };
    let user_id = Uuid::now_v7();
    let email_enc =
        state.crypto.keyring.seal_str("users", "email_enc", user_id, email.as_str()).map_err(ApiError::internal)?;
    let bidx = state.crypto.blind.index(BlindIndexKind::Email, email.as_str());
    sqlx::query(
        "INSERT INTO users (id, org_id, role, email_enc, email_bidx, password_hash) VALUES ($1, $2, 'patient', $3, $4, $5)",
    )
    .bind(user_id)
    .bind(org_id)
    .bind(&email_enc)
    .bind(&bidx[..])
    .bind(&password_hash)
    .execute(&mut *tx)
    .await
    .map_err(|e| match ApiError::from(e) {
        ApiError::Conflict(_) => ApiError::Conflict("that email is already registered".into()),
        other => other,
    })?;
    sqlx::query("UPDATE patient_invites SET used_at = $2, used_by = $3 WHERE id = $1 AND used_at IS NULL")
        .bind(invite_id)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    // Linking the record is an org-management write that the pre-auth context may not do;
    // the invite, verified above under lock, is the authorization, so this one statement
    // runs in the `system` context confined to the invite's organization.
    db::tx::set_claims(&mut tx, &Claims::system(Some(org_id))).await?;
    let linked = sqlx::query("UPDATE patients SET user_id = $1 WHERE id = $2 AND org_id = $3 AND user_id IS NULL")
        .bind(user_id)
        .bind(patient_id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if linked != 1 {
        return Err(ApiError::Conflict("this patient already has a portal account".into()));
    }
    let ctx = AuditContext {
        org_id: Some(org_id),
        actor_id: Some(user_id),
        actor_role: Some(ClaimRole::Patient.as_str()),
        ..meta.audit_context()
    };
    let event = AuditEvent::new(Action::Create, "user", Outcome::Success)
        .resource(user_id)
        .resource(invite_id)
        .patient(patient_id)
        .reason("patient portal account registered; invite used");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(user_id)
}
