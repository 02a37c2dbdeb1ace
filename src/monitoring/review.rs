//! The review queue: alerts with their evidence, decisions, and the figures a privacy office
//! reports. Reviewers are auditors (policies/70_monitoring.sql says why not admins). Every
//! read and every decision is recorded in the ledger; a decision's note is sealed (it may
//! name a person), and the ledger event says only the outcome and which earlier decision it
//! follows, so a later decision is a new event referencing the first.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::MonitorError;
use super::detectors::Detector;
use super::explain::{self, Explanation};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::crypto::store::FieldCrypto;

pub const STATUSES: [&str; 4] = ["open", "needs_follow_up", "appropriate", "violation"];
pub const OUTCOMES: [&str; 3] = ["appropriate", "violation", "needs_follow_up"];
/// Longest decision note (characters).
pub const MAX_NOTE: usize = 4000;

/// The list's filters, already parsed by the edge.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub detector: Option<Detector>,
    pub status: Option<&'static str>,
    pub actor: Option<Uuid>,
    pub patient: Option<Uuid>,
    /// Alerts whose evidence overlaps `[from, to)`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
    /// The last id of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AlertSummary {
    pub id: Uuid,
    pub detector: String,
    pub patient_id: Option<Uuid>,
    pub actor_id: Uuid,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub event_count: i64,
    pub status: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertSummary>,
    pub next_cursor: Option<Uuid>,
}

const SUMMARY: &str = "SELECT id, detector, patient_id, actor_id, first_seen, last_seen, event_count, status::text AS status FROM monitor_alerts";

/// `GET /v1/review/alerts`: newest first (ids are time-ordered), keyset pagination.
pub async fn list(conn: &mut PgConnection, ctx: &AuditContext, f: &Filters) -> Result<AlertPage, MonitorError> {
    let sql = format!(
        "{SUMMARY} WHERE ($1::text IS NULL OR detector = $1) AND ($2::text IS NULL OR status::text = $2) \
           AND ($3::uuid IS NULL OR actor_id = $3) AND ($4::uuid IS NULL OR patient_id = $4) \
           AND ($5::timestamptz IS NULL OR last_seen >= $5) AND ($6::timestamptz IS NULL OR first_seen < $6) \
           AND ($7::uuid IS NULL OR id < $7) \
         ORDER BY id DESC LIMIT $8"
    );
    let mut items: Vec<AlertSummary> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(f.detector.map(Detector::code))
        .bind(f.status)
        .bind(f.actor)
        .bind(f.patient)
        .bind(f.from)
        .bind(f.to)
        .bind(f.cursor)
        .bind(f.limit + 1)
        .fetch_all(&mut *conn)
        .await?;
    let more = items.len() as i64 > f.limit;
    items.truncate(usize::try_from(f.limit).unwrap_or(0));
    let next_cursor = if more { items.last().map(|a| a.id) } else { None };
    let ev = AuditEvent::new(Action::Read, "privacy_alert", Outcome::Success)
        .reason(format!("privacy alert list ({} rows)", items.len()));
    audit::record(conn, ctx, &ev).await?;
    Ok(AlertPage { items, next_cursor })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// The entry's index in the organization's ledger (`seq`), for an inclusion proof.
    pub ledger_index: i64,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = String)]
    pub action: Action,
    pub resource_type: String,
    pub patient_id: Option<Uuid>,
    pub break_glass: bool,
    pub explanation: Explanation,
    /// The relationships that did not hold at the time.
    pub missing_explanations: Vec<Explanation>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    pub id: Uuid,
    pub reviewer_id: Uuid,
    pub outcome: String,
    pub note: Option<String>,
    /// The ledger event recording it, and the one of the decision it follows.
    pub event_id: Uuid,
    pub supersedes: Option<Uuid>,
    pub decided_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: AlertSummary,
    pub rule: &'static str,
    pub evidence: Vec<Evidence>,
    /// Evidence is capped; this many entries were left out.
    pub evidence_truncated: i64,
    pub decisions: Vec<DecisionView>,
}

/// Evidence shown per alert (the count is always complete).
const MAX_EVIDENCE: i64 = 500;

/// `GET /v1/review/alerts/{id}`.
pub async fn get(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    crypto: &FieldCrypto,
    id: Uuid,
) -> Result<AlertDetail, MonitorError> {
    let alert: Option<AlertSummary> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SUMMARY} WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let alert = alert.ok_or(MonitorError::NotFound)?;
    let rule = Detector::parse(&alert.detector).map_or("", Detector::rule);
    type Ev = (i64, Uuid, DateTime<Utc>, Action, String, Uuid, bool, i16);
    let rows: Vec<Ev> = sqlx::query_as(
        "SELECT e.seq, l.event_id, l.occurred_at, l.action, l.resource_type, e.patient_id, l.break_glass, e.explanation \
         FROM monitor_alert_events e JOIN audit_log l ON l.ledger_id = e.org_id AND l.seq = e.seq \
         WHERE e.alert_id = $1 ORDER BY e.seq, e.patient_id LIMIT $2",
    )
    .bind(id)
    .bind(MAX_EVIDENCE)
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM monitor_alert_events WHERE alert_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    let evidence = rows
        .into_iter()
        .map(|(seq, event_id, at, action, resource_type, patient, bg, code)| {
            let why = Explanation::from_code(code);
            Evidence {
                ledger_index: seq,
                event_id,
                occurred_at: at,
                action,
                resource_type,
                patient_id: (!patient.is_nil()).then_some(patient),
                break_glass: bg,
                explanation: why,
                missing_explanations: explain::ALL.into_iter().filter(|e| *e != why).collect(),
            }
        })
        .collect::<Vec<_>>();
    let decisions = decisions(conn, crypto, id).await?;
    let ev =
        AuditEvent::new(Action::Read, "privacy_alert", Outcome::Success).resource(id).reason("privacy alert evidence");
    audit::record(conn, ctx, &ev).await?;
    Ok(AlertDetail { evidence_truncated: total - evidence.len() as i64, alert, rule, evidence, decisions })
}

async fn decisions(
    conn: &mut PgConnection,
    crypto: &FieldCrypto,
    alert: Uuid,
) -> Result<Vec<DecisionView>, MonitorError> {
    type D = (Uuid, Uuid, String, Option<Vec<u8>>, Uuid, Option<Uuid>, DateTime<Utc>);
    let rows: Vec<D> = sqlx::query_as(
        "SELECT id, reviewer_id, outcome::text, note_enc, event_id, supersedes, decided_at FROM monitor_decisions \
         WHERE alert_id = $1 ORDER BY decided_at, id",
    )
    .bind(alert)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, reviewer_id, outcome, note, event_id, supersedes, decided_at) in rows {
        let note = match note {
            Some(n) => {
                Some(crypto.keyring.open_string_fresh("monitor_decisions", "note_enc", id, &n).await?.to_string())
            }
            None => None,
        };
        out.push(DecisionView { id, reviewer_id, outcome, note, event_id, supersedes, decided_at });
    }
    Ok(out)
}

/// `POST /v1/review/alerts/{id}/decision`. `outcome` is one of [`OUTCOMES`] (parsed by the edge).
pub async fn decide(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    crypto: &FieldCrypto,
    reviewer: (Uuid, Uuid),
    alert: Uuid,
    outcome: &'static str,
    note: Option<&str>,
) -> Result<DecisionView, MonitorError> {
    let (org, reviewer) = reviewer;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(MonitorError::invalid("note", format!("at most {MAX_NOTE} characters")));
    }
    let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM monitor_alerts WHERE id = $1 FOR UPDATE")
        .bind(alert)
        .fetch_optional(&mut *conn)
        .await?;
    if found.is_none() {
        return Err(MonitorError::NotFound);
    }
    let previous: Option<Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM monitor_decisions WHERE alert_id = $1 ORDER BY decided_at DESC, id DESC LIMIT 1",
    )
    .bind(alert)
    .fetch_optional(&mut *conn)
    .await?;
    let id = Uuid::now_v7();
    let mut ev = AuditEvent::new(Action::Update, "privacy_alert", Outcome::Success).resource(alert).resource(id);
    ev = match previous {
        Some(p) => ev.resource(p).reason(format!("privacy review decision: {outcome} (follows decision event {p})")),
        None => ev.reason(format!("privacy review decision: {outcome}")),
    };
    let event_id = audit::record(conn, ctx, &ev).await?;
    let note_enc = note.map(|n| crypto.keyring.seal_str("monitor_decisions", "note_enc", id, n)).transpose()?;
    let decided_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO monitor_decisions (id, alert_id, org_id, reviewer_id, outcome, note_enc, event_id, supersedes) \
         VALUES ($1, $2, $3, $4, $5::monitor_outcome, $6, $7, $8) RETURNING decided_at",
    )
    .bind(id)
    .bind(alert)
    .bind(org)
    .bind(reviewer)
    .bind(outcome)
    .bind(&note_enc)
    .bind(event_id)
    .bind(previous)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE monitor_alerts SET status = $2::monitor_alert_status WHERE id = $1")
        .bind(alert)
        .bind(outcome)
        .execute(&mut *conn)
        .await?;
    Ok(DecisionView {
        id,
        reviewer_id: reviewer,
        outcome: outcome.to_owned(),
        note: note.map(str::to_owned),
        event_id,
        supersedes: previous,
        decided_at,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenByAge {
    pub under_1_day: i64,
    pub from_1_to_7_days: i64,
    pub from_7_to_30_days: i64,
    pub over_30_days: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewerCount {
    pub reviewer_id: Uuid,
    pub appropriate: i64,
    pub violation: i64,
    pub needs_follow_up: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayShare {
    pub day: chrono::NaiveDate,
    pub accesses: i64,
    pub explained: i64,
    /// explained / accesses.
    pub explained_share: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Metrics {
    pub open_by_age: OpenByAge,
    pub open_by_detector: std::collections::BTreeMap<String, i64>,
    pub decisions_per_reviewer: Vec<ReviewerCount>,
    /// Per local day, newest first (at most 90 days).
    pub explained_share: Vec<DayShare>,
}

/// `GET /v1/review/metrics`.
pub async fn metrics(conn: &mut PgConnection, ctx: &AuditContext, now: DateTime<Utc>) -> Result<Metrics, MonitorError> {
    let (a, b, c, d): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE created_at > $1 - interval '1 day'), \
                count(*) FILTER (WHERE created_at <= $1 - interval '1 day' AND created_at > $1 - interval '7 days'), \
                count(*) FILTER (WHERE created_at <= $1 - interval '7 days' AND created_at > $1 - interval '30 days'), \
                count(*) FILTER (WHERE created_at <= $1 - interval '30 days') \
         FROM monitor_alerts WHERE status IN ('open', 'needs_follow_up')",
    )
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let by_detector: Vec<(String, i64)> = sqlx::query_as(
        "SELECT detector, count(*) FROM monitor_alerts WHERE status IN ('open', 'needs_follow_up') GROUP BY detector ORDER BY detector",
    )
    .fetch_all(&mut *conn)
    .await?;
    let reviewers: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "SELECT reviewer_id, count(*) FILTER (WHERE outcome = 'appropriate'), count(*) FILTER (WHERE outcome = 'violation'), \
                count(*) FILTER (WHERE outcome = 'needs_follow_up') \
         FROM monitor_decisions GROUP BY reviewer_id ORDER BY reviewer_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let days: Vec<(chrono::NaiveDate, i64, i64)> =
        sqlx::query_as("SELECT day, accesses, explained FROM monitor_daily_stats ORDER BY day DESC LIMIT 90")
            .fetch_all(&mut *conn)
            .await?;
    let ev = AuditEvent::new(Action::Read, "privacy_alert", Outcome::Success).reason("privacy review metrics");
    audit::record(conn, ctx, &ev).await?;
    Ok(Metrics {
        open_by_age: OpenByAge { under_1_day: a, from_1_to_7_days: b, from_7_to_30_days: c, over_30_days: d },
        open_by_detector: by_detector.into_iter().collect(),
        decisions_per_reviewer: reviewers
            .into_iter()
            .map(|(reviewer_id, appropriate, violation, needs_follow_up)| ReviewerCount {
                reviewer_id,
                appropriate,
                violation,
                needs_follow_up,
            })
            .collect(),
        explained_share: days
            .into_iter()
            .map(|(day, accesses, explained)| DayShare {
                day,
                accesses,
                explained,
                explained_share: if accesses > 0 { explained as f64 / accesses as f64 } else { 0.0 },
            })
            .collect(),
    })
}
