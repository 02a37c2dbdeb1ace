//! Reading events back: filtered, cursor-paginated listings of one ledger, and a patient's
//! access report (the HIPAA accounting of disclosures). Runs on the caller's transaction, so
//! RLS decides what is visible; the filters only narrow it.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
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

/// One page of `ledger_id`'s events in index order, matching `f`. Only the filters that are
/// set become predicates, so each combination is its own prepared statement with its own plan
/// (a catch-all `($n IS NULL OR col = $n)` statement ends up with one generic plan that
/// cannot use the filter's index).
pub async fn list_events(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    f: &EventFilter,
) -> Result<Vec<LogRow>, sqlx::Error> {
    let mut q = QueryBuilder::new(format!("SELECT {} FROM audit_log WHERE ledger_id = ", store::log_columns()));
    q.push_bind(ledger_id);
    if let Some(p) = f.patient {
        q.push(" AND (patient_id = ").push_bind(p).push(" OR patient_ids @> ARRAY[").push_bind(p).push("]::uuid[])");
    }
    push_filters(&mut q, f);
    q.push(" AND seq > ").push_bind(f.after.unwrap_or(-1));
    q.push(" ORDER BY seq LIMIT ").push_bind(f.limit.clamp(1, MAX_PAGE));
    q.build_query_as::<LogRow>().fetch_all(conn).await
}

/// The predicates of every filter but the patient, each only when set.
fn push_filters(q: &mut QueryBuilder<Postgres>, f: &EventFilter) {
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
}

/// Where a newest-first page ended: the last row's time and index. Its text form
/// (`<unix microseconds>.<seq>`) is what the console puts in its "older" link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeCursor {
    pub occurred_at: DateTime<Utc>,
    pub seq: i64,
}

impl TimeCursor {
    pub fn of(row: &LogRow) -> Self {
        Self { occurred_at: row.event.occurred_at, seq: row.seq }
    }

    pub fn encode(&self) -> String {
        format!("{}.{}", self.occurred_at.timestamp_micros(), self.seq)
    }

    /// `None` for anything [`TimeCursor::encode`] does not write.
    pub fn parse(text: &str) -> Option<Self> {
        let (micros, seq) = text.split_once('.')?;
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if !ok(micros) || !ok(seq) {
            return None;
        }
        let occurred_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        let seq = seq.parse().ok().filter(|s: &i64| *s >= 0)?;
        Some(Self { occurred_at, seq })
    }
}

/// Which rows of the patient filter one branch of the query reads.
#[derive(Clone, Copy)]
enum PatientBranch {
    None,
    /// Events about the patient alone (`patient_id`).
    Single(Uuid),
    /// Events that reached several patients, the patient among them, and not already in
    /// `Single`.
    Among(Uuid),
}

fn push_time_branch(
    q: &mut QueryBuilder<Postgres>,
    ledger_id: Uuid,
    f: &EventFilter,
    patient: PatientBranch,
    before: Option<TimeCursor>,
    limit: i64,
) {
    q.push(format!("SELECT {} FROM audit_log WHERE ledger_id = ", store::log_columns()));
    q.push_bind(ledger_id);
    match patient {
        PatientBranch::None => {}
        PatientBranch::Single(p) => {
            q.push(" AND patient_id = ").push_bind(p);
        }
        PatientBranch::Among(p) => {
            // Array containment cannot be an index condition under RLS (not leakproof): the
            // GIN look-up runs in custos.events_among_patients (policies/50_rls_audit.sql),
            // which answers ledger indexes to the ledger's own auditors and admins only.
            q.push(" AND seq = ANY(ARRAY(SELECT custos.events_among_patients(")
                .push_bind(ledger_id)
                .push(", ")
                .push_bind(p)
                .push("))) AND patient_id IS DISTINCT FROM ")
                .push_bind(p);
        }
    }
    push_filters(q, f);
    if let Some(c) = before {
        q.push(" AND (occurred_at, seq) < (").push_bind(c.occurred_at).push(", ").push_bind(c.seq).push(")");
    }
    q.push(" ORDER BY occurred_at DESC, seq DESC LIMIT ").push_bind(limit);
}

/// One page of `ledger_id`'s events matching `f`, newest first by (`occurred_at`, `seq`), by
/// keyset from `before` (never OFFSET): the console's event browser. `f.after` is not used.
///
/// Every filter has an index that returns rows in this order
/// (migrations/20261202150001_console_event_indexes.sql), so a page reads about `limit` index
/// entries whatever the ledger's size. The patient filter is two such scans (events about the
/// patient alone, and events that reached several patients) merged.
pub async fn list_events_by_time(
    conn: &mut PgConnection,
    ledger_id: Uuid,
    f: &EventFilter,
    before: Option<TimeCursor>,
) -> Result<Vec<LogRow>, sqlx::Error> {
    let limit = f.limit.clamp(1, MAX_PAGE);
    let mut q = QueryBuilder::new("");
    match f.patient {
        None => push_time_branch(&mut q, ledger_id, f, PatientBranch::None, before, limit),
        Some(p) => {
            q.push("(");
            push_time_branch(&mut q, ledger_id, f, PatientBranch::Single(p), before, limit);
            q.push(") UNION ALL (");
            push_time_branch(&mut q, ledger_id, f, PatientBranch::Among(p), before, limit);
            q.push(") ORDER BY occurred_at DESC, seq DESC LIMIT ").push_bind(limit);
        }
    }
    q.build_query_as::<LogRow>().fetch_all(conn).await
}

/// Whether the caller can see the patient at all (their own record, or an admin's org), and
/// if so the patient's portal account (for their own sign-ins in the access report).
pub async fn patient_visible(conn: &mut PgConnection, patient_id: Uuid) -> Result<Option<Option<Uuid>>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM patients WHERE id = $1").bind(patient_id).fetch_optional(conn).await
}

/// For an auditor (who may not read the patients table): whether the patient is of the
/// caller's organization, and if so their portal account — ids only
/// (`custos.patient_of_org`, policies/85_console.sql). `None` to every other role.
pub async fn patient_of_org(conn: &mut PgConnection, patient_id: Uuid) -> Result<Option<Option<Uuid>>, sqlx::Error> {
    let row: Option<(Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT patient_id, account_id FROM custos.patient_of_org($1)")
            .bind(patient_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(_, account)| account))
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
