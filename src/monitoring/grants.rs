//! Whether each break-glass grant has been reviewed. Every grant raises a `break_glass` alert
//! in the privacy review queue (`detectors::on_grant`, evidence: the grant's ledger entry); a
//! grant counts as reviewed once a reviewer closed that alert (appropriate or violation).
//! The link is exact: the grant's ledger entry (its reason names the grant,
//! `clinical::care::grant_named_by`) is evidence of the alert (`monitor_alert_events`).
//! Admins read break-glass alerts for this (policies/85_console.sql); auditors read them all.

use std::collections::HashMap;

use sqlx::PgConnection;
use uuid::Uuid;

/// Where a grant stands in the review queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantReview {
    pub alert_id: Uuid,
    /// `open`, `needs_follow_up`, `appropriate` or `violation` (the alert's status).
    pub status: String,
}

impl GrantReview {
    /// A reviewer closed the alert.
    pub fn reviewed(&self) -> bool {
        matches!(self.status.as_str(), "appropriate" | "violation")
    }
}

/// The review state of each of `grants` (`(grant id, patient id)`) of organization `org`;
/// a grant the monitor has not reached yet has none.
pub async fn reviews(
    conn: &mut PgConnection,
    org: Uuid,
    grants: &[(Uuid, Uuid)],
) -> Result<HashMap<Uuid, GrantReview>, sqlx::Error> {
    let (ids, patients): (Vec<Uuid>, Vec<Uuid>) = grants.iter().copied().unzip();
    let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT g.id, a.id, a.status::text FROM unnest($2::uuid[], $3::uuid[]) AS g(id, patient) \
         JOIN LATERAL ( \
             SELECT a.id, a.status FROM audit_log l \
             JOIN monitor_alert_events e ON e.org_id = l.ledger_id AND e.seq = l.seq \
             JOIN monitor_alerts a ON a.id = e.alert_id AND a.org_id = l.ledger_id AND a.detector = 'break_glass' \
             WHERE l.ledger_id = $1 AND l.patient_id = g.patient AND l.action = 'break_glass' \
               AND l.resource_type = 'break_glass_grant' AND l.reason LIKE 'break-glass grant ' || g.id::text || '%' \
             ORDER BY a.created_at DESC LIMIT 1) a ON true",
    )
    .bind(org)
    .bind(&ids)
    .bind(&patients)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(g, alert_id, status)| (g, GrantReview { alert_id, status })).collect())
}
