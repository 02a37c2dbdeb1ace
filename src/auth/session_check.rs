//! The session check of a request: is the session an access token names still live (not
//! revoked, not idle for longer than the idle timeout, not past its absolute lifetime, user
//! active), and does the token still match the account (organization, role)? One primary-key
//! statement, run as the caller after their claims (RLS confines it to the caller's own
//! sessions); it also bumps `last_seen_at` when that is more than [`SEEN_GRANULARITY`] old.
//!
//! Two ways to run it:
//! - on its own, one round trip ([`check`], [`check_full`]): the HTTP layer's `AuthUser`
//!   extractors, and a clinical request that ends before it sent anything;
//! - as a gate at the head of a request transaction ([`begin_with`]): `BEGIN`, the claims,
//!   the patient scope, the gate and the request's first statements go as one pipeline, and
//!   PostgreSQL skips everything after the gate when it refuses (`clinical::Req`).
//!
//! A refusal is the 401 (or the 403 of a restricted session) every route gives, noted on the
//! request's [`Verdict`] for the denial record; a check that could not be made (the database
//! is away) is a failure, never a refusal.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::caller::{AuthUser, Identity, Refusal, RequestMeta};
use super::error::AuthError;
use crate::audit::AuditContext;
use crate::clock::span;
use crate::db::{self, ClaimRole, Claims};

type LiveRow = (Uuid, String, bool, bool, DateTime<Utc>, DateTime<Utc>, bool);

/// `last_seen_at` is written only when it is older than this: a busy session costs a write
/// (and a WAL flush at commit) every few seconds rather than on every request. The idle
/// timeout is therefore enforced to within this much (a session may end up to this much
/// earlier than a per-request bump would allow, never later).
const SEEN_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// The session check, as the caller: live means not revoked, not past its lifetime, a request
/// since `$4` at the latest, account active. `last_seen_at` is written (to `$3`) only when older
/// than `$5`, and only if no other request holds the row: on the clinical API the write is part
/// of the request's transaction, and a concurrent request of the same session skips it rather
/// than waiting for that transaction to end. No row: not live.
macro_rules! live_session {
    ($select:literal) => {
        concat!(
            "WITH live AS ( \
                SELECT s.id, s.org_id, u.role::text AS role, s.mfa_verified, u.must_change_password, s.expires_at, \
                       s.last_seen_at, \
                       (o.require_phishing_resistant AND NOT s.phishing_resistant AND u.role <> 'patient') \
                           AS passkey_required \
                FROM sessions s JOIN users u ON u.id = s.user_id JOIN organizations o ON o.id = s.org_id \
                WHERE s.id = $1 AND s.user_id = $2 AND u.status = 'active' \
                  AND s.revoked_at IS NULL AND s.expires_at > $3 AND s.last_seen_at > $4), \
            stale AS ( \
                SELECT s.id FROM sessions s JOIN live ON live.id = s.id \
                WHERE live.last_seen_at < $5 FOR UPDATE OF s SKIP LOCKED), \
            seen AS ( \
                UPDATE sessions s SET last_seen_at = greatest(s.last_seen_at, $3) FROM stale \
                WHERE s.id = stale.id \
                RETURNING s.last_seen_at) ",
            $select
        )
    };
}
const LIVE_SESSION: &str = live_session!(
    "SELECT live.org_id, live.role, live.mfa_verified, live.must_change_password, live.expires_at, \
            coalesce((SELECT seen.last_seen_at FROM seen), live.last_seen_at), live.passkey_required \
     FROM live"
);

/// [`LIVE_SESSION`] as a gate for the statements pipelined after it ([`begin_with`]): always
/// one row, and unless it admits the caller — live, still the token's organization (`$6`) and
/// role (`$7`), a full session (no one-time password to change; staff with a second factor,
/// as [`AuthUser::mfa_enrollment_required`]) — `custos.refuse_session()` raises SQLSTATE 28000,
/// which aborts the rest of the pipeline before it runs.
const ADMIT_SESSION: &str = live_session!(
    "SELECT l.org_id, l.role, l.mfa_verified, l.must_change_password, l.expires_at, \
            coalesce((SELECT seen.last_seen_at FROM seen), l.last_seen_at), l.passkey_required, \
            CASE WHEN l.org_id = $6 AND l.role = $7 AND NOT l.must_change_password \
                      AND (l.mfa_verified OR l.role = 'patient') AND NOT l.passkey_required \
                 THEN true ELSE custos.refuse_session() END \
     FROM (VALUES (1)) one LEFT JOIN live l ON true"
);

/// The SQLSTATE of `custos.refuse_session()`.
const SESSION_REFUSED: &str = "28000";

/// A presented access token (or console session cookie) that verified — signature,
/// algorithm, key id, issuer, audience, expiry, a known role: who it says the caller is, and
/// the request it came with. Not yet a session that is live.
#[derive(Debug, Clone)]
pub struct Presented {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub session_id: Uuid,
    pub role: ClaimRole,
    /// The request's facts (its [`Verdict`] cell included).
    pub meta: RequestMeta,
}

/// What the check needs besides the caller: the time now and the idle timeout.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub now: DateTime<Utc>,
    pub idle_timeout: Duration,
}

/// The open request transaction and the rows of each query sent with its first round trip.
pub type Begun = (Transaction<'static, Postgres>, Vec<Vec<PgRow>>);

/// Why [`begin_with`] left no transaction open.
#[derive(Debug)]
pub enum NotBegun {
    /// The session check refused the caller: the 401/403 to answer (the refusal is noted on
    /// the request's [`Verdict`]).
    Refused(AuthError),
    /// The caller is admitted, or could not be checked, and a statement failed; everything
    /// was rolled back.
    Failed(sqlx::Error),
}

impl Presented {
    /// The RLS claims the token asserts (unscoped).
    pub fn claims(&self) -> Claims {
        Claims::user(self.user_id, self.org_id, self.role, self.meta.request_id)
    }

    pub fn identity(&self) -> Identity {
        Identity { user_id: self.user_id, org_id: self.org_id, role: self.role }
    }

    /// The audit context of this caller (actor, org, request and correlation ids, client).
    pub fn audit_context(&self) -> AuditContext {
        self.meta.context_for(&self.claims())
    }

    /// Notes a refusal of this caller for the denial record: 401.
    fn refuse(&self, reason: &'static str) -> AuthError {
        self.meta.verdict.refuse(Refusal { claims: self.claims(), reason });
        AuthError::Unauthorized
    }

    /// The session check as a query, to run after this caller's claims in the same
    /// transaction.
    fn check_query(&self, rules: Rules) -> db::BoundQuery {
        self.query(rules, LIVE_SESSION)
    }

    /// [`Presented::check_query`] as a gate ([`ADMIT_SESSION`]).
    fn gate_query(&self, rules: Rules) -> db::BoundQuery {
        self.query(rules, ADMIT_SESSION).bind(self.org_id).bind(self.role.as_str())
    }

    fn query(&self, rules: Rules, sql: &'static str) -> db::BoundQuery {
        sqlx::query(sql)
            .bind(self.session_id)
            .bind(self.user_id)
            .bind(rules.now)
            .bind(rules.now - span(rules.idle_timeout))
            .bind(rules.now - SEEN_GRANULARITY)
    }

    /// The caller, if the session check's `rows` say the session is live and the token still
    /// matches the account; otherwise the 401 (with its refusal noted).
    fn admit(&self, rules: Rules, rows: Option<&Vec<PgRow>>) -> Result<AuthUser, AuthError> {
        let row: Option<LiveRow> = rows.and_then(|rows| rows.first()).map(sqlx::FromRow::from_row).transpose()?;
        let Some((org_id, db_role, mfa_verified, must_change_password, expires_at, last_seen, passkey_required)) = row
        else {
            return Err(self.refuse("session not live (revoked, past its lifetime, idle or account disabled)"));
        };
        // A token minted before a role or organization change is not honoured.
        if org_id != self.org_id || db_role != self.role.as_str() {
            return Err(self.refuse("access token does not match the account's role or organization"));
        }
        self.meta.verdict.accept(self.claims());
        Ok(AuthUser {
            user_id: self.user_id,
            org_id,
            role: self.role,
            session_id: self.session_id,
            mfa_verified,
            must_change_password,
            passkey_enrollment_required: passkey_required,
            session_expires_at: expires_at,
            idle_expires_at: (last_seen + span(rules.idle_timeout)).min(expires_at),
            meta: self.meta.clone(),
        })
    }
}

/// Checks `caller`'s session on its own, in one round trip (the claims, then the check as
/// the caller, pipelined — one Sync, so one implicit transaction that the claims end with).
/// Any live session, restricted or not; a refusal is the 401 with its refusal noted, any
/// other error a check that could not be made.
pub async fn check(pool: &PgPool, caller: &Presented, rules: Rules) -> Result<AuthUser, AuthError> {
    let results = check_alone(pool, caller, rules).await?;
    caller.admit(rules, results.get(1))
}

/// [`check`] for a full session only: the outer error is a check that could not be made (a
/// failure), the inner one a refusal (401, or the 403 of a restricted session).
pub async fn check_full(
    pool: &PgPool,
    caller: &Presented,
    rules: Rules,
) -> Result<Result<AuthUser, AuthError>, AuthError> {
    let results = check_alone(pool, caller, rules).await?;
    Ok(caller.admit(rules, results.get(1)).and_then(AuthUser::full))
}

async fn check_alone(pool: &PgPool, caller: &Presented, rules: Rules) -> Result<Vec<Vec<PgRow>>, sqlx::Error> {
    pool.acquire().await?.fetch_pipeline([db::tx::claims_query(&caller.claims()), caller.check_query(rules)]).await
}

/// Opens the request transaction as `caller` (narrowed to one patient with `patient_scope`),
/// checks the session, and runs `queries` — all in one round trip: `BEGIN`, the claims, the
/// scope, the session gate and `queries` go as one pipeline. Returns the open transaction and
/// the rows of each of `queries`. A session that is not live, or not a full one, stops the
/// pipeline at the gate; the answer is then [`check_full`]'s (found by checking once more on
/// its own: the gate says only "no").
pub async fn begin_with(
    pool: &PgPool,
    caller: &Presented,
    rules: Rules,
    patient_scope: Option<Uuid>,
    queries: impl IntoIterator<Item = db::BoundQuery>,
) -> Result<Begun, NotBegun> {
    let claims = match patient_scope {
        Some(patient) => caller.claims().scoped_to(patient),
        None => caller.claims(),
    };
    match db::tx::begin_checked(pool, &claims, caller.gate_query(rules), queries).await {
        Ok((tx, check, results)) => {
            // The gate let it through; the same rule is applied once more here.
            match caller.admit(rules, Some(&check)).and_then(AuthUser::full) {
                Ok(_) => Ok((tx, results)),
                Err(e) => {
                    let _ = tx.rollback().await;
                    Err(NotBegun::Refused(e))
                }
            }
        }
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some(SESSION_REFUSED) => {
            Err(NotBegun::Refused(refusal(pool, caller, rules).await))
        }
        // Which statement failed is not known, so neither is whether the gate passed: ask on
        // its own, and answer a refusal as such. A re-check that cannot be made (the database
        // is still away) leaves it a failure: the first error is answered (503 for a lost
        // connection) and recorded as one, never as a refusal.
        Err(e) => Err(match check_full(pool, caller, rules).await {
            Ok(Ok(_)) | Err(_) => NotBegun::Failed(e),
            Ok(Err(refused)) => NotBegun::Refused(refused),
        }),
    }
}

/// Why the gate refused, as [`check_full`] answers it.
async fn refusal(pool: &PgPool, caller: &Presented, rules: Rules) -> AuthError {
    match check_full(pool, caller, rules).await {
        Ok(Err(e)) => e,
        // The gate refused, but why cannot be asked now: still a refusal.
        Err(_) => caller.refuse("session refused (reason not known: database unavailable)"),
        // Admitted a moment after the gate refused: a race with a change of the session; this
        // request is still refused.
        Ok(Ok(_)) => caller.refuse("session changed during the request"),
    }
}
