//! Patient portal accounts: an admin or a clinician with access to the patient issues a
//! single-use invite (opaque code, stored hashed, valid 72 hours). The code goes to the
//! patient's email on file through the outbox (`super::outbox`), never to the issuer; the
//! patient redeems it with `POST /v1/auth/register` (code + the patient's date of birth),
//! which creates a `patient` account linked to the record. A redemption from the issuer's own
//! client is refused and recorded (reason code `issuer_client`).

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use super::caller::{AuthUser, RequestMeta};
use super::error::AuthError;
use super::outbox;
use super::password::PasswordPolicy;
use super::tokens::{hash_opaque_token, new_opaque_token};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::crypto::BlindIndexKind;
use crate::db::{self, ClaimRole, Claims};
use crate::domain::Email;
use crate::state::AppState;

/// How long an invite stays valid.
pub const INVITE_TTL_HOURS: i64 = 72;

/// A new invite, as its issuer sees it: no code (issue 19). The code went to the patient's
/// contact on file through the outbox (`super::outbox`), which staff cannot read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invite {
    pub invite_id: Uuid,
    pub expires_at: DateTime<Utc>,
    /// How the code travels to the patient: `email` (the address in the patient's chart).
    #[schema(example = "email")]
    pub delivery: &'static str,
}

/// `POST /v1/patients/{id}/invite`: issues an invite and hands its code to the outbox for the
/// patient's email on file; the issuer never sees the code. A patient with no email on file
/// gets no invite (422, field `email`).
pub async fn issue(state: &AppState, user: &AuthUser, patient_id: Uuid) -> Result<Invite, AuthError> {
    user.require_role(&[ClaimRole::Admin, ClaimRole::Clinician])?;
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    // RLS: only patients this caller may see (admins: their org; clinicians: their care team).
    let found: Option<(Option<Uuid>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT user_id, email_enc FROM patients WHERE id = $1")
            .bind(patient_id)
            .fetch_optional(&mut *tx)
            .await?;
    let email_enc = match found {
        None => return Err(AuthError::NotFound),
        Some((Some(_), _)) => return Err(AuthError::Conflict("this patient already has a portal account".into())),
        Some((None, None)) => {
            return Err(AuthError::validation(
                "email",
                "the patient has no email address on file to send the invite to; add one to the patient's record first",
            ));
        }
        Some((None, Some(enc))) => enc,
    };
    let on_file = state
        .crypto
        .keyring
        .open_string_fresh("patients", "email_enc", patient_id, &email_enc)
        .await
        .map_err(AuthError::internal)?;
    let recipient = Email::parse(on_file.as_str())
        .map_err(|_| AuthError::validation("email", "the patient's email address on file cannot receive mail"))?;
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
    let text = outbox::invite_text(&code, expires_at);
    drop(code);
    let message = outbox::enqueue_invite(
        &mut tx,
        &state.crypto.keyring,
        outbox::NewInviteMessage {
            org_id: user.org_id,
            invite_id: id,
            patient_id,
            created_by: user.user_id,
            recipient: &recipient,
            text: text.as_str(),
            now,
        },
    )
    .await?;
    let event = AuditEvent::new(Action::Create, "patient_invite", Outcome::Success)
        .resource(id)
        .resource(message)
        .patient(patient_id)
        .reason("invite issued; code queued in the outbox for the patient's email on file");
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    state.outbox_wake.notify_one();
    Ok(Invite { invite_id: id, expires_at, delivery: outbox::CHANNEL_EMAIL })
}

/// Redemption attempts that may reach the date-of-birth comparison; the next one consumes the
/// invite (attempts are counted before comparing, under the invite's row lock).
pub const MAX_INVITE_FAILURES: i32 = 5;

/// Reason code of a redemption refused because it came from the issuer's own client (the
/// address and user agent of one of the issuer's live sessions); first word of the event's
/// reason.
pub const REFUSED_ISSUER_CLIENT: &str = "issuer_client";

/// The one answer to every failed redemption (bad, used or expired code, wrong date of birth,
/// email already registered), so an invite cannot be used to probe which emails have accounts
/// or to tell a wrong code from a wrong date of birth.
fn refused() -> AuthError {
    AuthError::BadRequest("the invite code, date of birth or email cannot be used".into())
}

type InviteRow = (Uuid, Uuid, Uuid, Uuid, Vec<u8>);

/// `POST /v1/auth/register`: redeem an invite. Returns the new user id.
///
/// Knowing the code is not enough: the registrant must also give the patient's date of birth
/// as on file (sealed in `patients.birth_date_enc`), so the staff member who issued the code
/// cannot redeem it for an account of their own without the patient's data — and that attempt
/// is audited in the organization's ledger with the issuer's id. Five wrong dates of birth
/// consume the invite; an email that already has an account consumes it at once (one probe
/// per audited invite). The account creation, the link `patients.user_id` and the use of the
/// invite happen together inside `custos.redeem_invite` (policies/30_rls_identity.sql): the app
/// itself may neither insert patient accounts nor link records.
pub async fn register(
    state: &AppState,
    meta: &RequestMeta,
    code: &str,
    email: &str,
    birth_date: &str,
    password: SecretString,
) -> Result<Uuid, AuthError> {
    let email = Email::parse(email)?;
    let birth_date = crate::domain::parse_date("birth_date", birth_date)?;
    // The password policy first, before anything is compared (issue 19): a weak password is
    // refused whatever the code and date of birth, so the 422 cannot tell a right date from a
    // wrong one.
    let local = email.as_str().split('@').next().unwrap_or_default().to_owned();
    let password_hash = super::hashing::check_and_hash(state, password, PasswordPolicy::MFA_OPTIONAL, local).await?;
    let now = state.clock.now();
    let hash = hash_opaque_token(code);

    let mut tx = db::begin(&state.pool, &Claims::auth(meta.request_id)).await?;
    let found: Option<InviteRow> =
        match hash {
            None => None,
            Some(hash) => sqlx::query_as(
                "SELECT invite_id, org_id, patient_id, created_by, birth_date_enc FROM custos.invite_by_code($1, $2)",
            )
            .bind(&hash[..])
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?,
        };
    let (Some(hash), Some((invite_id, org_id, patient_id, issued_by, birth_enc))) = (hash, found) else {
        let event = AuditEvent::new(Action::Create, "user", Outcome::Denied)
            .reason("registration: unknown, used or expired invite");
        audit::record(&mut tx, &meta.audit_context(), &event).await?;
        tx.commit().await?;
        return Err(refused());
    };
    // A redemption from the issuer's own client (issue 19): the address and user agent of a
    // live session of the staff member who issued the invite. Refused before anything is
    // counted or compared, with the answer of every other failure, and recorded with its
    // reason code.
    let from_issuer: bool = sqlx::query_scalar("SELECT custos.invite_issuer_client($1, $2, $3, $4::inet, $5)")
        .bind(&hash[..])
        .bind(now)
        .bind(now - crate::clock::span(state.settings.auth.idle_timeout))
        .bind(meta.client_ip.map(|ip| ip.to_string()))
        .bind(meta.user_agent.as_deref())
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let org_ctx = AuditContext { org_id: Some(org_id), ..meta.audit_context() };
    if from_issuer {
        let event = AuditEvent::new(Action::Create, "user", Outcome::Denied)
            .resource(invite_id)
            .patient(patient_id)
            .reason(format!(
                "{REFUSED_ISSUER_CLIENT}: registration refused from the client of a live session of the invite's \
                 issuer ({issued_by})"
            ));
        record_in_org(state, meta, org_id, &org_ctx, &event).await?;
        return Err(refused());
    }
    // Count the attempt BEFORE comparing (issue 19): the count is an UPDATE of the invite row,
    // which takes its row lock and re-checks that the invite is still live, so parallel
    // guesses queue on the row and at most MAX_INVITE_FAILURES of them reach the comparison;
    // the next one consumes the invite.
    let admitted = match count_attempt(state, meta, &hash, org_id).await? {
        Some(false) => true,
        Some(true) | None => false,
    };
    if !admitted {
        let event =
            AuditEvent::new(Action::Create, "user", Outcome::Denied).resource(invite_id).patient(patient_id).reason(
                format!("registration refused: attempt limit reached (invite issued by {issued_by}); invite consumed"),
            );
        record_in_org(state, meta, org_id, &org_ctx, &event).await?;
        return Err(refused());
    }
    let on_file = state
        .crypto
        .keyring
        .open_string_fresh("patients", "birth_date_enc", patient_id, &birth_enc)
        .await
        .map_err(AuthError::internal)?;
    if on_file.as_str() != birth_date.format("%Y-%m-%d").to_string() {
        let event = AuditEvent::new(Action::Create, "user", Outcome::Denied)
            .resource(invite_id)
            .patient(patient_id)
            .reason(format!("registration refused: date of birth does not match (invite issued by {issued_by})"));
        record_in_org(state, meta, org_id, &org_ctx, &event).await?;
        return Err(refused());
    }

    let user_id = Uuid::now_v7();
    let email_enc =
        state.crypto.keyring.seal_str("users", "email_enc", user_id, email.as_str()).map_err(AuthError::internal)?;
    let bidx = state.crypto.blind.index(BlindIndexKind::Email, email.as_str());
    let mut tx = db::begin(&state.pool, &Claims::auth_for(user_id, org_id, meta.request_id)).await?;
    let redeemed: Result<Option<(Uuid, Uuid, Uuid, Uuid)>, sqlx::Error> = sqlx::query_as(
        "SELECT org_id, patient_id, invite_id, created_by FROM custos.redeem_invite($1, $2, $3, $4, $5, $6)",
    )
    .bind(&hash[..])
    .bind(now)
    .bind(user_id)
    .bind(&email_enc)
    .bind(&bidx[..])
    .bind(&password_hash)
    .fetch_optional(&mut *tx)
    .await;
    let redeemed = match redeemed {
        Ok(r) => r,
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") => {
            drop(tx);
            invite_failed(state, meta, &hash, org_id, true).await?;
            let event = AuditEvent::new(Action::Create, "user", Outcome::Denied)
                .resource(invite_id)
                .patient(patient_id)
                .reason(format!(
                    "registration refused: email already registered (invite issued by {issued_by}); invite consumed"
                ));
            record_in_org(state, meta, org_id, &org_ctx, &event).await?;
            return Err(refused());
        }
        Err(e) => return Err(e.into()),
    };
    let Some((org_id, patient_id, invite_id, issued_by)) = redeemed else {
        drop(tx);
        let event = AuditEvent::new(Action::Create, "user", Outcome::Denied)
            .resource(invite_id)
            .patient(patient_id)
            .reason("registration: invite used concurrently or record already linked");
        record_in_org(state, meta, org_id, &org_ctx, &event).await?;
        return Err(refused());
    };
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
        .reason(format!("patient portal account registered; invite used (issued by {issued_by})"));
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await?;
    Ok(user_id)
}

/// Counts a failed redemption of a live invite (consuming it at the limit, or at once).
async fn invite_failed(
    state: &AppState,
    meta: &RequestMeta,
    hash: &[u8; 32],
    org_id: Uuid,
    consume: bool,
) -> Result<bool, AuthError> {
    let mut tx = db::begin(&state.pool, &Claims::auth_in_org(org_id, meta.request_id)).await?;
    let consumed: Option<bool> = sqlx::query_scalar("SELECT consumed FROM custos.invite_failed($1, $2, $3, $4)")
        .bind(&hash[..])
        .bind(state.clock.now())
        .bind(MAX_INVITE_FAILURES)
        .bind(consume)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(consumed.unwrap_or(false))
}

/// Counts one redemption attempt of a live invite under its row lock, consuming it once more
/// than [`MAX_INVITE_FAILURES`] attempts were made: `Some(false)` admits this attempt to the
/// comparison, `Some(true)` (this attempt consumed it) and `None` (no longer live) do not.
async fn count_attempt(
    state: &AppState,
    meta: &RequestMeta,
    hash: &[u8; 32],
    org_id: Uuid,
) -> Result<Option<bool>, AuthError> {
    let mut tx = db::begin(&state.pool, &Claims::auth_in_org(org_id, meta.request_id)).await?;
    let consumed: Option<bool> = sqlx::query_scalar("SELECT consumed FROM custos.invite_failed($1, $2, $3, false)")
        .bind(&hash[..])
        .bind(state.clock.now())
        .bind(MAX_INVITE_FAILURES + 1)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(consumed)
}

/// Records a refused registration in the invite's organization ledger (no actor yet).
async fn record_in_org(
    state: &AppState,
    meta: &RequestMeta,
    org_id: Uuid,
    ctx: &AuditContext,
    event: &AuditEvent,
) -> Result<(), AuthError> {
    let mut tx = db::begin(&state.pool, &Claims::auth_in_org(org_id, meta.request_id)).await?;
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    Ok(())
}
