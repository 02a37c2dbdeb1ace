//! Idempotency-Key (IETF httpapi draft "The Idempotency-Key HTTP Header Field") for clinical
//! writes: the answer to a write sent with a key is stored, sealed, in the write's own
//! transaction ([`store`], called by `Req` just before COMMIT), so the write and its answer
//! commit together or not at all. A retry with the same key and the same request within
//! [`REPLAY_HOURS`] gets that answer again without writing (the HTTP layer replays it,
//! src/middleware/idempotency.rs); the same key with another request is refused. Keys are
//! scoped to the user (RLS: a user sees only their own).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::{self, Claims};

/// How long an answer is replayed.
pub const REPLAY_HOURS: i32 = 24;

/// A write sent with a key that has no stored answer yet (put in the request's extensions by
/// the HTTP layer): what its answer is stored under.
#[derive(Debug, Clone)]
pub struct IdempotentWrite {
    pub key: String,
    /// SHA-256 of the request (method, path, body).
    pub fingerprint: [u8; 32],
}

/// A stored answer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub id: Uuid,
    pub fingerprint: Vec<u8>,
    pub status: i16,
    pub answer_enc: Vec<u8>,
    pub patient_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
}

/// Table and column of the sealed answer (associated data of the seal).
pub const SEALED_AS: (&str, &str) = ("idempotency_keys", "answer_enc");

/// The caller's live (under 24 hours) stored answer for `key`, if any.
pub async fn lookup(conn: &mut PgConnection, key: &str) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, fingerprint, status, answer_enc, patient_id, request_id FROM idempotency_keys \
         WHERE user_id = custos.user_id() AND idem_key = $1 AND created_at > now() - make_interval(hours => $2)",
    )
    .bind(key)
    .bind(REPLAY_HOURS)
    .fetch_optional(conn)
    .await
}

/// [`lookup`] in a transaction of its own, as `claims`.
pub async fn lookup_as(pool: &sqlx::PgPool, claims: &Claims, key: &str) -> Result<Option<Stored>, sqlx::Error> {
    let mut tx = db::begin(pool, claims).await?;
    let found = lookup(&mut tx, key).await?;
    tx.commit().await?;
    Ok(found)
}

/// Stores the answer of `write` in the caller's transaction (an expired answer under the same
/// key is removed first). A concurrent request with the same key that commits first makes
/// this one fail (unique violation: 409, and its write is rolled back with it).
pub async fn store(
    conn: &mut PgConnection,
    write: &IdempotentWrite,
    id: Uuid,
    status: u16,
    answer_enc: &[u8],
    patient_id: Option<Uuid>,
    request_id: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = custos.user_id() AND idem_key = $1 \
         AND created_at <= now() - make_interval(hours => $2)",
    )
    .bind(&write.key)
    .bind(REPLAY_HOURS)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys (id, org_id, user_id, idem_key, fingerprint, status, answer_enc, patient_id, \
         request_id) VALUES ($1, custos.org_id(), custos.user_id(), $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(&write.key)
    .bind(&write.fingerprint[..])
    .bind(i16::try_from(status).unwrap_or(200))
    .bind(answer_enc)
    .bind(patient_id)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}
