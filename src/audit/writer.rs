//! `record`: one INSERT into `audit_inbox` on the caller's connection (their transaction).
//! No RETURNING: the app role may insert into the inbox but not read it back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::event::{AuditContext, AuditEvent, Outcome};
use crate::db::{self, BoundQuery, Claims};

const MAX_UA: usize = 512;
const MAX_REASON: usize = 1000;

/// Records `event` in the caller's transaction and returns its event id.
pub async fn record(conn: &mut PgConnection, ctx: &AuditContext, event: &AuditEvent) -> Result<Uuid, sqlx::Error> {
    insert(conn, ctx, event, false).await
}

/// Like [`record`], for a clinician's access to `event.patient_id`: when the clinician reaches
/// that patient only through a live break-glass grant (no care-team membership), the event is
/// flagged `break_glass` and carries the grant's reason. The look-up is part of the same
/// INSERT, so it sees exactly what the request's reads saw and costs no extra round trip.
pub async fn record_flagging_break_glass(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    event: &AuditEvent,
) -> Result<Uuid, sqlx::Error> {
    insert(conn, ctx, event, true).await
}

async fn insert(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    event: &AuditEvent,
    flag_break_glass: bool,
) -> Result<Uuid, sqlx::Error> {
    let (event_id, query) = insert_query(ctx, event, flag_break_glass);
    query.execute(conn).await?;
    if event.outcome != Outcome::Success {
        ctx.recorded.mark();
    }
    Ok(event_id)
}

/// The INSERT of [`record`] (`flag_break_glass`: of [`record_flagging_break_glass`]) as a query
/// to run later, e.g. at the end of a pipeline with the request's reads (one round trip
/// fewer), and the event id it writes.
pub fn insert_query(ctx: &AuditContext, event: &AuditEvent, flag_break_glass: bool) -> (Uuid, BoundQuery) {
    let event_id = Uuid::now_v7();
    let user_agent = ctx.user_agent.as_deref().map(|ua| truncate(ua, MAX_UA).to_owned());
    let reason = event.reason.as_deref().map(|r| truncate(r, MAX_REASON).to_owned());
    let mut patient_ids = event.patient_ids.clone();
    patient_ids.sort_unstable();
    patient_ids.dedup();
    let query = sqlx::query(
        "INSERT INTO audit_inbox (event_id, occurred_at, org_id, actor_id, actor_role, action, resource_type, \
         resource_ids, patient_id, outcome, request_id, client_ip, user_agent, reason, break_glass, imported, \
         correlation_id, patient_ids) \
         SELECT $1, coalesce($2, clock_timestamp()), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::inet, $13, \
                coalesce(bg.reason, $14), $15 OR bg.reason IS NOT NULL, $16, $18, $19 \
         FROM (SELECT) AS one \
         LEFT JOIN LATERAL ( \
             SELECT left(coalesce(g.reason, 'break-glass grant ' || g.id::text \
                                  || '; reason sealed, hmac-sha256:' || encode(g.reason_mac, 'hex')), 1000) AS reason \
             FROM break_glass_grants g \
             WHERE $17 AND g.patient_id = $9 AND g.clinician_id = $4 \
               AND g.revoked_at IS NULL AND g.expires_at > now() \
               AND NOT EXISTS (SELECT 1 FROM care_team_members c WHERE c.patient_id = $9 AND c.clinician_id = $4) \
             ORDER BY g.expires_at DESC LIMIT 1) AS bg ON true",
    )
    .bind(event_id)
    .bind(event.occurred_at)
    .bind(event.org_id.or(ctx.org_id))
    .bind(ctx.actor_id)
    .bind(ctx.actor_role)
    .bind(event.action)
    .bind(event.resource_type)
    .bind(event.resource_ids.clone())
    .bind(event.patient_id)
    .bind(event.outcome)
    .bind(ctx.request_id)
    .bind(ctx.client_ip.map(|ip| ip.to_string()))
    .bind(user_agent)
    .bind(reason)
    .bind(event.break_glass)
    .bind(event.imported)
    .bind(flag_break_glass && event.patient_id.is_some() && ctx.actor_id.is_some() && !event.break_glass)
    .bind(ctx.correlation_id.clone())
    .bind(patient_ids);
    (event_id, query)
}

/// Records one event in a transaction of its own, as `claims`: a refusal or a failure, whose
/// request transaction was rolled back (or never began). Best effort, and never an error for
/// the caller (the answer stands): when the database is unavailable the event goes to
/// [`record_later`]. Any other failure is logged as an error.
///
/// A write whose COMMIT answer was lost is retried too, so such an event may be in the ledger
/// twice (with two event ids): a duplicate error event is preferred to a missing one.
pub async fn record_alone(pool: &PgPool, claims: &Claims, ctx: &AuditContext, event: &AuditEvent) {
    ctx.recorded.mark();
    match record_in_own_tx(pool, claims, ctx, event).await {
        Ok(()) => {}
        Err(e) if db::is_unavailable(&e) => {
            retry_in_background(pool.clone(), *claims, ctx.clone(), event.clone(), FIRST_PAUSE);
        }
        Err(e) => tracing::error!(error = %e, "could not record a refused or failed request in the audit inbox"),
    }
}

/// Records a failure that the database being away caused (a 503) on a task of its own, so
/// that the answer does not wait for the pool's acquire timeout: the write is retried with
/// growing pauses for up to [`RETRY_FOR`] while the database is unavailable, and the event
/// carries the time of the failure, not of the write. Giving up is logged as an error.
pub fn record_later(pool: &PgPool, claims: &Claims, ctx: &AuditContext, event: &AuditEvent) {
    ctx.recorded.mark();
    retry_in_background(pool.clone(), *claims, ctx.clone(), event.clone(), Duration::ZERO);
}

/// How long a background write of [`record_alone`] keeps trying.
pub const RETRY_FOR: Duration = Duration::from_secs(15 * 60);

/// At most this many events wait for the database at once (each is a small task); beyond it
/// an event is logged as lost rather than letting an outage grow the server's memory.
const MAX_PENDING: usize = 10_000;

static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Events of [`record_alone`] waiting for the database to come back.
pub fn pending_retries() -> usize {
    PENDING.load(Ordering::Relaxed)
}

async fn record_in_own_tx(
    pool: &PgPool,
    claims: &Claims,
    ctx: &AuditContext,
    event: &AuditEvent,
) -> Result<(), sqlx::Error> {
    let mut tx = db::begin(pool, claims).await?;
    record(&mut tx, ctx, event).await?;
    tx.commit().await
}

/// The pause before a background write's first retry; it doubles up to 30 s.
const FIRST_PAUSE: Duration = Duration::from_millis(250);

fn retry_in_background(pool: PgPool, claims: Claims, ctx: AuditContext, mut event: AuditEvent, first: Duration) {
    if PENDING.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING {
        PENDING.fetch_sub(1, Ordering::Relaxed);
        tracing::error!(action = ?event.action, outcome = ?event.outcome, "audit event lost: too many waiting for the database");
        return;
    }
    // The time of the failure (microseconds, as the ledger keeps it), not of the late write.
    let now = chrono::Utc::now();
    event
        .occurred_at
        .get_or_insert(now - chrono::TimeDelta::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1000)));
    let started = std::time::Instant::now();
    tokio::spawn(async move {
        let mut pause = first;
        loop {
            tokio::time::sleep(pause).await;
            match record_in_own_tx(&pool, &claims, &ctx, &event).await {
                Ok(()) => break,
                Err(e) if db::is_unavailable(&e) && started.elapsed() < RETRY_FOR => {
                    pause = (pause * 2).clamp(FIRST_PAUSE, Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit event lost: the database did not take it in time");
                    break;
                }
            }
        }
        PENDING.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Cuts at a character boundary so multi-byte text never splits.
fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "hé");
        assert_eq!(super::truncate("abc", 10), "abc");
    }
}
