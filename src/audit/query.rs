//! Reading events back: filtered, cursor-paginated listings of one ledger, and a patient's
//! access report (the HIPAA accounting of disclosures). Runs on the caller's transaction, so
//! RLS decides what is visible; the filters only narrow it.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::event::{Action, Outcome};
use super::store::{self, LogRow};

/// Largest page a caller may ask for.
pub const MAX_PAGE: i64 = 1000;

/// What to list. `after` is the cursor: the last `seq` of the previous page.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub patient: Option<Uuid>,
    pub actor: Option<Uuid>,
    pub action: Option<Action>,
    pub outcome: Option<Outcome>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub break_glass: Option<bool>,
    pub after: Option<i64>,
    pub limit: i64,
}

/// One page of `ledger_id`'s events in index order, matching `f`.
pub async fn list_events(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    f: &EventFilter,
) -> Result<Vec<LogRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM audit_log WHERE ledger_id = $1 \
           AND ($2::uuid IS NULL OR patient_id = $2 OR patient_ids @> ARRAY[$2]) \
           AND ($3::uuid IS NULL OR actor_id = $3) \
           AND ($4::audit_action IS NULL OR action = $4) AND ($5::audit_outcome IS NULL OR outcome = $5) \
           AND ($6::timestamptz IS NULL OR occurred_at >= $6) AND ($7::timestamptz IS NULL OR occurred_at < $7) \
           AND ($8::bool IS NULL OR break_glass = $8) AND seq > $9 \
         ORDER BY seq LIMIT $10",
        store::log_columns()
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ledger_id)
        .bind(f.patient)
        .bind(f.actor)
        .bind(f.action)
        .bind(f.outcome)
        .bind(f.from)
        .bind(f.to)
        .bind(f.break_glass)
        .bind(f.after.unwrap_or(-1))
        .bind(f.limit.clamp(1, MAX_PAGE))
        .fetch_all(conn)
        .await
}

/// Whether the caller can see the patient at all (their own record, or an admin's org), and
/// if so the patient's portal account (for their own sign-ins in the access report).
pub async fn patient_visible(conn: &mut PgConnection, patient_id: Uuid) -> Result<Option<Option<Uuid>>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM patients WHERE id = $1").bind(patient_id).fetch_optional(conn).await
}

/// Actions of a patient's own account that their access report lists: signing in and out,
/// second factors, token refreshes.
const OWN_SIGN_INS: &str = "'login', 'login_failed', 'logout', 'mfa', 'refresh'";

/// A patient's accounting of disclosures within the caller's organization, oldest first:
/// every event naming the patient — alone (`patient_id`) or among several (`patient_ids`: list
/// reads, exports) — and the sign-ins of the patient's own portal `account`: by it (the
/// actor), or attempted against it (a failed sign-in names the account it tried).
pub async fn access_report(
    conn: &mut PgConnection,
    org_id: Uuid,
    patient_id: Uuid,
    account: Option<Uuid>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<LogRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM audit_log WHERE ledger_id = $1 AND seq > $4 \
           AND (patient_id = $2 OR patient_ids @> ARRAY[$2] \
                OR ($3::uuid IS NOT NULL AND action IN ({OWN_SIGN_INS}) \
                    AND (actor_id = $3 OR resource_ids @> ARRAY[$3::text]))) \
         ORDER BY seq LIMIT $5",
        store::log_columns()
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(org_id)
        .bind(patient_id)
        .bind(account)
        .bind(after.unwrap_or(-1))
        .bind(limit.clamp(1, MAX_PAGE))
        .fetch_all(conn)
        .await
}
