//! The outbox (issue 19): messages to a patient's contact on file that the staff member who
//! caused them never sees. A patient invite's code goes here instead of into the issuer's
//! answer. The table is `outbox_messages` (migration 20261203120001_outbox.sql); staff may only
//! enqueue, in their own name, for an invite they just issued, and can read nothing back
//! (policies/37_invites_outbox.sql). Address and text are sealed. The sender
//! (`super::outbox_sender`) takes due messages under the `outbox` service claim, delivers and
//! deletes them.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::AuthError;
use crate::crypto::store::LiveKeyring;
use crate::domain::Email;

/// The one kind of message so far (`outbox_messages.kind`).
pub const KIND_PATIENT_INVITE: &str = "patient_invite";

/// How an invite reaches the patient, as the issuer's answer names it.
pub const CHANNEL_EMAIL: &str = "email";

/// Subject line of an invite message (carries nothing about the patient).
pub const INVITE_SUBJECT: &str = "Your patient portal invitation";

/// The line of an invite message that holds the code (the tests and the patient look for it).
pub const INVITE_CODE_LINE: &str = "Invite code: ";

/// The text of an invite message. It names neither the patient nor the clinic's staff: only
/// the code, its expiry and what to do with it.
pub fn invite_text(code: &SecretString, expires_at: DateTime<Utc>) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(format!(
        "Hello,\r\n\r\nyou have been invited to your patient portal. To create your account, register \
         with the code below, your date of birth and a password of your choice.\r\n\r\n\
         {INVITE_CODE_LINE}{}\r\n\r\nThe code can be used once and expires on {} UTC. If you did \
         not expect this message, ignore it.\r\n",
        code.expose_secret(),
        expires_at.format("%Y-%m-%d %H:%M"),
    ))
}

/// One message to enqueue (inside the issuer's transaction).
pub struct NewInviteMessage<'a> {
    pub org_id: Uuid,
    pub invite_id: Uuid,
    pub patient_id: Uuid,
    pub created_by: Uuid,
    pub recipient: &'a Email,
    pub text: &'a str,
    pub now: DateTime<Utc>,
}

/// Seals and enqueues an invite message in the caller's transaction (claims of the issuer);
/// returns the message id. The caller wakes the sender after commit
/// (`AppState::outbox_wake`).
pub async fn enqueue_invite(
    conn: &mut PgConnection,
    keyring: &LiveKeyring,
    m: NewInviteMessage<'_>,
) -> Result<Uuid, AuthError> {
    let id = Uuid::now_v7();
    let recipient_enc =
        keyring.seal_str("outbox_messages", "recipient_enc", id, m.recipient.as_str()).map_err(AuthError::internal)?;
    let body_enc = keyring.seal_str("outbox_messages", "body_enc", id, m.text).map_err(AuthError::internal)?;
    sqlx::query(
        "INSERT INTO outbox_messages (id, org_id, kind, invite_id, patient_id, created_by, created_at, \
         recipient_enc, body_enc, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $7)",
    )
    .bind(id)
    .bind(m.org_id)
    .bind(KIND_PATIENT_INVITE)
    .bind(m.invite_id)
    .bind(m.patient_id)
    .bind(m.created_by)
    .bind(m.now)
    .bind(&recipient_enc)
    .bind(&body_enc)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// A message the sender took, still sealed.
#[derive(sqlx::FromRow)]
pub struct Due {
    pub id: Uuid,
    pub org_id: Uuid,
    pub invite_id: Uuid,
    pub patient_id: Uuid,
    pub attempts: i32,
    pub recipient_enc: Vec<u8>,
    pub body_enc: Vec<u8>,
}

/// How long a taken message is hidden from other senders (several servers share the outbox)
/// before it counts as due again, should this sender die mid-delivery.
pub const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Takes up to `limit` due messages (claims: `Claims::outbox(None)`), leasing them.
pub async fn take_due(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
    let due: Vec<Due> = sqlx::query_as(
        "SELECT id, org_id, invite_id, patient_id, attempts, recipient_enc, body_enc FROM outbox_messages \
         WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    if !due.is_empty() {
        let ids: Vec<Uuid> = due.iter().map(|d| d.id).collect();
        sqlx::query("UPDATE outbox_messages SET next_attempt_at = $2 WHERE id = ANY($1)")
            .bind(&ids)
            .bind(now + LEASE)
            .execute(&mut *conn)
            .await?;
    }
    Ok(due)
}

/// A delivered or abandoned message goes, code and address with it.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM outbox_messages WHERE id = $1").bind(id).execute(&mut *conn).await?.rows_affected()
        == 1)
}

/// A failed attempt: counted, with its class, and the next one scheduled.
pub async fn retry_later(
    conn: &mut PgConnection,
    id: Uuid,
    attempts: i32,
    next_at: DateTime<Utc>,
    class: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox_messages SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1")
        .bind(id)
        .bind(attempts)
        .bind(next_at)
        .bind(class)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The wait after the `attempts`-th failure: 30 s, doubling, at most an hour.
pub fn backoff(attempts: i32) -> chrono::Duration {
    let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(7);
    chrono::Duration::seconds((30i64 << exp).min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let secs: Vec<i64> = (1..=10).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(0).num_seconds(), 30);
    }

    #[test]
    fn the_invite_text_holds_the_code_on_its_own_line() {
        let code = SecretString::from("abc-DEF_123");
        let text = invite_text(&code, DateTime::from_timestamp(0, 0).unwrap_or_default());
        assert!(text.lines().any(|l| l == "Invite code: abc-DEF_123"), "{}", text.as_str());
        assert!(text.is_ascii());
    }
}
