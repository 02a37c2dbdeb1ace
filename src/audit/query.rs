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

/// Which end of the ledger a page starts from; the cursor continues in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Index order (the API's): the cursor is the last `seq` seen, the next page is above it.
    #[default]
    OldestFirst,
    /// Newest first (the console's): the next page is below the cursor.
    NewestFirst,
}

/// One page of `ledger_id`'s events in index order, matching `f`.
pub async fn list_events(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    f: &EventFilter,
) -> Result<Vec<LogRow>, sqlx::Error> {
    list_events_ordered(conn, ledger_id, f, Order::OldestFirst).await
}

/// One page of `ledger_id`'s events matching `f`, in `order`, by keyset on `seq` (never
/// OFFSET). Only the filters that are set become predicates, so each combination is its own
/// prepared statement with its own plan: a catch-all `($n IS NULL OR col = $n)` statement
/// gets one generic plan that cannot use the filter's index. Every single filter has an
/// index `(ledger_id, <filter>, seq)` (migrations/20261202150001_console_event_indexes.sql)
/// that serves the page in `seq` order from the cursor on; bench/console_events.rs measures
/// them on a ledger of 1M events.
pub async fn list_events_ordered(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    f: &EventFilter,
    order: Order,
) -> Result<Vec<LogRow>, sqlx::Error> {
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
        "SELECT {} FROM audit_log WHERE ledger_id = ",
        store::log_columns()
    ));
    q.push_bind(ledger_id);
    if let Some(p) = f.patient {
        q.push(" AND (patient_id = ").push_bind(p).push(" OR patient_ids @> ARRAY[").push_bind(p).push("]::uuid[])");
    }
    if let Some(a) = f.actor {
        q.push(" AND actor_id = ").push_bind(a);
    }
    if let Some(a) = f.action {
        q.push(" AND action = ").push_bind(a);
    }
    if let Some(o) = f.outcome {
        q.push(" AND outcome = ").push_bind(o);
    }
    if let Some(t) = f.from {
        q.push(" AND occurred_at >= ").push_bind(t);
    }
    if let Some(t) = f.to {
        q.push(" AND occurred_at < ").push_bind(t);
    }
    if let Some(b) = f.break_glass {
        q.push(" AND break_glass = ").push_bind(b);
    }
    match (order, f.after) {
        (Order::OldestFirst, after) => {
            q.push(" AND seq > ").push_bind(after.unwrap_or(-1)).push(" ORDER BY seq");
        }
        (Order::NewestFirst, Some(before)) => {
            q.push(" AND seq < ").push_bind(before).push(" ORDER BY seq DESC");
        }
        (Order::NewestFirst, None) => {
            q.push(" ORDER BY seq DESC");
        }
    }
    q.push(" LIMIT ").push_bind(f.limit.clamp(1, MAX_PAGE));
    q.build_query_as::<LogRow>().fetch_all(conn).await
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
