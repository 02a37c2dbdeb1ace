//! The engine: reads each organization's ledger from its watermark, explains every access,
//! runs the detectors, and writes explanations, daily figures, alerts with their evidence,
//! the users' running history and the new watermark in ONE transaction per batch. A crash
//! rolls all of it back together, so after a restart the same entries are analyzed again from
//! the same state: no alert is lost or raised twice. Nothing is added to the request path.
//!
//! Leadership is a session-level advisory lock held by a dedicated connection that runs every
//! batch (as the sequencer does): if the connection drops, PostgreSQL releases the lock and
//! rolls back the open batch together. The watermark row is also locked `FOR UPDATE`, so even
//! two engines that both believed they led could not analyze one entry twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::config::Thresholds;
use super::context::{self, ContextError, OrgContext};
use super::detectors::{self, Access, Hit, UserState};
use super::explain::{AccessFacts, ActorRole, Explanation, explain, weakest};
use crate::audit::{Action, Outcome};
use crate::crypto::store::FieldCrypto;

/// Advisory lock key of the monitor leader (arbitrary constant, per database).
pub const LEADER_LOCK: i64 = 0x0C05_7050_4D0E;

/// Why a pass stopped. None of these carries event content or PHI.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Context(#[from] ContextError),
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Ledger entries analyzed.
    pub entries: u64,
    /// Of which accesses to patient data (successful entries naming a patient).
    pub accesses: u64,
    pub explained: u64,
    /// Detector findings (an alert gathers many).
    pub findings: u64,
}

impl PassReport {
    fn add(&mut self, o: PassReport) {
        self.entries += o.entries;
        self.accesses += o.accesses;
        self.explained += o.explained;
        self.findings += o.findings;
    }
}

/// A connection holding the monitor's leader lock.
pub struct Leader {
    conn: PgConnection,
}

impl Leader {
    /// Connects and tries the lock once; `None` when another engine leads.
    pub async fn try_acquire(opts: &PgConnectOptions) -> Result<Option<Self>, sqlx::Error> {
        Ok(crate::db::try_lead(opts, "custos-monitor", LEADER_LOCK).await?.map(|conn| Self { conn }))
    }

    /// Analyzes every organization's ledger up to its current end.
    pub async fn run_pass(&mut self, crypto: &FieldCrypto, th: &Thresholds) -> Result<PassReport, EngineError> {
        let mut tx = self.conn.begin().await?;
        sqlx::query("SET LOCAL ROLE custos_monitor").execute(&mut *tx).await?;
        let orgs: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM organizations ORDER BY id").fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut report = PassReport::default();
        for org in orgs {
            report.add(analyze_org(&mut self.conn, org, crypto, th).await?);
        }
        Ok(report)
    }

    pub async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(LEADER_LOCK).execute(&mut self.conn).await;
        self.conn.close().await.ok();
    }
}

/// Runs a candidate forever: lead when possible, a pass every `every`, and on any error drop
/// the connection (and with it the lock and the open batch) and start again.
pub async fn run_candidate(opts: PgConnectOptions, crypto: Arc<FieldCrypto>, th: Thresholds, every: Duration) {
    loop {
        match Leader::try_acquire(&opts).await {
            Ok(Some(mut leader)) => {
                tracing::info!("privacy monitor: leader");
                loop {
                    match leader.run_pass(&crypto, &th).await {
                        Ok(r) if r.entries > 0 => {
                            tracing::info!(entries = r.entries, findings = r.findings, "privacy monitor pass")
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "privacy monitor stopped leading");
                            break;
                        }
                    }
                    tokio::time::sleep(every).await;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "privacy monitor: cannot connect"),
        }
        tokio::time::sleep(every).await;
    }
}

async fn as_monitor(conn: &mut PgConnection) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL ROLE custos_monitor").execute(&mut *tx).await?;
    Ok(tx)
}

/// One organization: its facts, then batches from the watermark to the end the ledger had
/// when the pass began (every relationship an entry up to there relies on was committed
/// before that entry was, hence before the facts were read).
async fn analyze_org(
    conn: &mut PgConnection,
    org: Uuid,
    crypto: &FieldCrypto,
    th: &Thresholds,
) -> Result<PassReport, EngineError> {
    let mut tx = as_monitor(conn).await?;
    sqlx::query("INSERT INTO monitor_watermarks (ledger_id, org_id) VALUES ($1, $1) ON CONFLICT DO NOTHING")
        .bind(org)
        .execute(&mut *tx)
        .await?;
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(seq) + 1, 0) FROM audit_log WHERE ledger_id = $1")
        .bind(org)
        .fetch_one(&mut *tx)
        .await?;
    let next: i64 = sqlx::query_scalar("SELECT next_seq FROM monitor_watermarks WHERE ledger_id = $1")
        .bind(org)
        .fetch_one(&mut *tx)
        .await?;
    if next >= head {
        tx.commit().await?;
        return Ok(PassReport::default());
    }
    context::refresh_patient_keys(&mut tx, org, crypto).await?;
    let ctx = context::load(&mut tx, org, crypto).await?;
    let mut users = load_users(&mut tx, org).await?;
    tx.commit().await?;
    let mut roles = detectors::RoleBaselines::new(&users, th);

    let mut report = PassReport::default();
    loop {
        let mut tx = as_monitor(conn).await?;
        let next: i64 = sqlx::query_scalar("SELECT next_seq FROM monitor_watermarks WHERE ledger_id = $1 FOR UPDATE")
            .bind(org)
            .fetch_one(&mut *tx)
            .await?;
        if next >= head {
            tx.commit().await?;
            return Ok(report);
        }
        let upto = head.min(next.saturating_add(th.batch_size));
        let mut batch = Batch::default();
        let rows = fetch(&mut tx, org, next, upto, &ctx.time_zone).await?;
        for row in &rows {
            batch.entry(&mut tx, org, &ctx, th, &mut roles, &mut users, row).await?;
        }
        batch.report.entries = (upto - next) as u64;
        batch.write(&mut tx, org, &mut users).await?;
        sqlx::query("UPDATE monitor_watermarks SET next_seq = $2, updated_at = now() WHERE ledger_id = $1")
            .bind(org)
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        for u in users.values_mut() {
            u.dirty = false;
        }
        report.add(batch.report);
    }
}

type Row = (
    i64,
    DateTime<Utc>,
    Option<Uuid>,
    Option<String>,
    Action,
    String,
    Option<Uuid>,
    Vec<Uuid>,
    Outcome,
    bool,
    Option<String>,
    Option<String>,
    i32,
    i32,
    NaiveDate,
);

/// Ledger entries `[from, to)` with their local weekday, minute of day and date. Only what
/// the rules read: the target and reason of user-administration entries, nothing else.
async fn fetch(conn: &mut PgConnection, org: Uuid, from: i64, to: i64, tz: &str) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, occurred_at, actor_id, actor_role, action, resource_type, patient_id, patient_ids, outcome, \
                break_glass, \
                CASE WHEN action = 'admin' AND resource_type = 'user' THEN resource_ids[1] END, \
                CASE WHEN action = 'admin' AND resource_type = 'user' THEN left(reason, 32) END, \
                extract(isodow FROM l.local)::int4, \
                (extract(hour FROM l.local) * 60 + extract(minute FROM l.local))::int4, \
                l.local::date \
         FROM audit_log, LATERAL (SELECT occurred_at AT TIME ZONE $4 AS local) AS l \
         WHERE ledger_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
    )
    .bind(org)
    .bind(from)
    .bind(to)
    .bind(tz)
    .fetch_all(conn)
    .await
}

/// What one batch found, written together with the watermark.
#[derive(Default)]
struct Batch {
    seqs: Vec<i64>,
    codes: Vec<i16>,
    days: BTreeMap<NaiveDate, (i64, i64)>,
    hits: Vec<Hit>,
    report: PassReport,
}

impl Batch {
    #[allow(clippy::too_many_arguments)]
    async fn entry(
        &mut self,
        conn: &mut PgConnection,
        org: Uuid,
        ctx: &OrgContext,
        th: &Thresholds,
        roles: &mut detectors::RoleBaselines,
        users: &mut HashMap<Uuid, UserState>,
        row: &Row,
    ) -> Result<(), sqlx::Error> {
        let (
            seq,
            at,
            actor,
            role,
            action,
            resource_type,
            patient,
            patient_ids,
            outcome,
            bg,
            target,
            reason,
            dow,
            min,
            day,
        ) = row;
        let (Some(actor), Outcome::Success) = (actor, outcome) else { return Ok(()) };
        let role = ActorRole::parse(role.as_deref());
        let access = Access {
            seq: *seq,
            at: *at,
            actor: *actor,
            role,
            break_glass: *bg,
            local_day: *day,
            local_dow: u8::try_from(*dow).unwrap_or(1),
            local_minute: u16::try_from(*min).unwrap_or(0),
        };
        if *action == Action::Admin && resource_type == "user" {
            let disabled = reason.as_deref().is_some_and(|r| r.starts_with("user disabled"));
            let enabled = reason.as_deref().is_some_and(|r| r.starts_with("user enabled"));
            if let Some(target) = target.as_deref().and_then(|t| Uuid::parse_str(t).ok())
                && (disabled || enabled)
            {
                detectors::on_disable(users.entry(target).or_default(), *at, *seq, disabled);
                if disabled {
                    self.before_disable(conn, org, ctx, th, target, *at, *seq).await?;
                }
            }
        }
        if *action == Action::BreakGlass && resource_type == "break_glass_grant" {
            if let Some(p) = patient {
                self.hits.push(detectors::on_grant(&access, *p));
            }
            return Ok(());
        }
        let mut patients: Vec<Uuid> = patient.iter().copied().collect();
        patients.extend(patient_ids.iter().copied().filter(|p| Some(*p) != *patient));
        if patients.is_empty() {
            return Ok(());
        }
        let facts = AccessFacts { at: *at, actor: *actor, role, resource_type, break_glass: *bg };
        let explained: Vec<(Uuid, Explanation)> = patients.iter().map(|p| (*p, explain(ctx, &facts, *p))).collect();
        let why = explained.iter().map(|e| e.1).reduce(weakest).unwrap_or(Explanation::None);
        self.seqs.push(*seq);
        self.codes.push(why.code());
        let d = self.days.entry(*day).or_default();
        d.0 += 1;
        d.1 += i64::from(why.is_explained());
        self.report.accesses += 1;
        self.report.explained += u64::from(why.is_explained());
        detectors::on_access(ctx, th, roles, users.entry(*actor).or_default(), &access, &explained, &mut self.hits);
        Ok(())
    }

    /// `after_disable`, looking back: the disabled user's accesses in the hours before.
    #[allow(clippy::too_many_arguments)]
    async fn before_disable(
        &mut self,
        conn: &mut PgConnection,
        org: Uuid,
        ctx: &OrgContext,
        th: &Thresholds,
        target: Uuid,
        at: DateTime<Utc>,
        seq: i64,
    ) -> Result<(), sqlx::Error> {
        type Before = (i64, DateTime<Utc>, Option<String>, String, bool, Option<Uuid>, Vec<Uuid>);
        let rows: Vec<Before> = sqlx::query_as(
            "SELECT seq, occurred_at, actor_role, resource_type, break_glass, patient_id, patient_ids FROM audit_log \
             WHERE ledger_id = $1 AND actor_id = $2 AND occurred_at >= $3 AND occurred_at <= $4 AND seq < $5 \
               AND outcome = 'success' AND (patient_id IS NOT NULL OR cardinality(patient_ids) > 0) ORDER BY seq",
        )
        .bind(org)
        .bind(target)
        .bind(at - chrono::Duration::hours(th.after_disable_before_hours))
        .bind(at)
        .bind(seq)
        .fetch_all(&mut *conn)
        .await?;
        for (s, t, role, resource_type, bg, p, ps) in rows {
            let facts = AccessFacts {
                at: t,
                actor: target,
                role: ActorRole::parse(role.as_deref()),
                resource_type: &resource_type,
                break_glass: bg,
            };
            for p in p.into_iter().chain(ps) {
                self.hits.push(Hit {
                    detector: detectors::Detector::AfterDisable,
                    actor: target,
                    patient: None,
                    bucket: seq.to_string(),
                    seq: s,
                    at: t,
                    evidence_patient: Some(p),
                    explanation: explain(ctx, &facts, p),
                });
            }
        }
        Ok(())
    }

    async fn write(
        &mut self,
        conn: &mut PgConnection,
        org: Uuid,
        users: &mut HashMap<Uuid, UserState>,
    ) -> Result<(), sqlx::Error> {
        if !self.seqs.is_empty() {
            sqlx::query(
                "INSERT INTO monitor_explanations (ledger_id, seq, explanation) \
                 SELECT $1, s, e FROM unnest($2::int8[], $3::int2[]) AS u(s, e)",
            )
            .bind(org)
            .bind(&self.seqs)
            .bind(&self.codes)
            .execute(&mut *conn)
            .await?;
            let days: Vec<NaiveDate> = self.days.keys().copied().collect();
            let acc: Vec<i64> = self.days.values().map(|v| v.0).collect();
            let exp: Vec<i64> = self.days.values().map(|v| v.1).collect();
            sqlx::query(
                "INSERT INTO monitor_daily_stats (org_id, day, accesses, explained) \
                 SELECT $1, d, a, e FROM unnest($2::date[], $3::int8[], $4::int8[]) AS u(d, a, e) \
                 ON CONFLICT (org_id, day) DO UPDATE SET accesses = monitor_daily_stats.accesses + EXCLUDED.accesses, \
                     explained = monitor_daily_stats.explained + EXCLUDED.explained",
            )
            .bind(org)
            .bind(&days)
            .bind(&acc)
            .bind(&exp)
            .execute(&mut *conn)
            .await?;
        }
        self.write_alerts(conn, org).await?;
        write_users(conn, org, users).await
    }

    async fn write_alerts(&mut self, conn: &mut PgConnection, org: Uuid) -> Result<(), sqlx::Error> {
        if self.hits.is_empty() {
            return Ok(());
        }
        self.report.findings = self.hits.len() as u64;
        type Key = (&'static str, Uuid, Option<Uuid>, String);
        type Seen = (DateTime<Utc>, DateTime<Utc>, HashSet<i64>);
        let mut alerts: BTreeMap<Key, Seen> = BTreeMap::new();
        for h in &self.hits {
            let e = alerts
                .entry((h.detector.code(), h.actor, h.patient, h.bucket.clone()))
                .or_insert_with(|| (h.at, h.at, HashSet::new()));
            e.0 = e.0.min(h.at);
            e.1 = e.1.max(h.at);
            e.2.insert(h.seq);
        }
        let (mut det, mut act, mut pat, mut buck, mut first, mut last, mut count) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for ((d, a, p, b), (f, l, seqs)) in &alerts {
            det.push(*d);
            act.push(*a);
            pat.push(*p);
            buck.push(b.clone());
            first.push(*f);
            last.push(*l);
            count.push(seqs.len() as i64);
        }
        let ids: Vec<(Uuid, String, Uuid, Option<Uuid>, String)> = sqlx::query_as(
            "INSERT INTO monitor_alerts (org_id, detector, actor_id, patient_id, bucket, first_seen, last_seen, event_count) \
             SELECT $1, d, a, p, b, f, l, c \
             FROM unnest($2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::int8[]) \
                  AS u(d, a, p, b, f, l, c) \
             ON CONFLICT (org_id, detector, actor_id, coalesce(patient_id, '00000000-0000-0000-0000-000000000000'::uuid), bucket) \
                 WHERE status IN ('open', 'needs_follow_up') \
             DO UPDATE SET first_seen = least(monitor_alerts.first_seen, EXCLUDED.first_seen), \
                 last_seen = greatest(monitor_alerts.last_seen, EXCLUDED.last_seen), \
                 event_count = monitor_alerts.event_count + EXCLUDED.event_count \
             RETURNING id, detector, actor_id, patient_id, bucket",
        )
        .bind(org)
        .bind(&det)
        .bind(&act)
        .bind(&pat)
        .bind(&buck)
        .bind(&first)
        .bind(&last)
        .bind(&count)
        .fetch_all(&mut *conn)
        .await?;
        let by_key: HashMap<(String, Uuid, Option<Uuid>, String), Uuid> =
            ids.into_iter().map(|(id, d, a, p, b)| ((d, a, p, b), id)).collect();
        let (mut alert, mut seq, mut patient, mut why) = (vec![], vec![], vec![], vec![]);
        for h in &self.hits {
            if let Some(id) = by_key.get(&(h.detector.code().to_owned(), h.actor, h.patient, h.bucket.clone())) {
                alert.push(*id);
                seq.push(h.seq);
                patient.push(h.evidence_patient.unwrap_or_default());
                why.push(h.explanation.code());
            }
        }
        sqlx::query(
            "INSERT INTO monitor_alert_events (alert_id, org_id, seq, patient_id, explanation) \
             SELECT a, $1, s, p, e FROM unnest($2::uuid[], $3::int8[], $4::uuid[], $5::int2[]) AS u(a, s, p, e) \
             ON CONFLICT DO NOTHING",
        )
        .bind(org)
        .bind(&alert)
        .bind(&seq)
        .bind(&patient)
        .bind(&why)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

async fn load_users(conn: &mut PgConnection, org: Uuid) -> Result<HashMap<Uuid, UserState>, sqlx::Error> {
    type R = (
        Uuid,
        Vec<i64>,
        Option<DateTime<Utc>>,
        Option<NaiveDate>,
        Vec<Uuid>,
        i32,
        f64,
        Option<DateTime<Utc>>,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<R> = sqlx::query_as(
        "SELECT user_id, hours, last_access_at, day, day_patients, baseline_days, baseline_mean, disabled_at, \
                disabled_seq, role FROM monitor_user_state WHERE org_id = $1",
    )
    .bind(org)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(u, hours, last, day, pats, bd, bm, dis, dseq, role)| {
            let mut h = [0i64; 24];
            for (i, v) in hours.into_iter().take(24).enumerate() {
                h[i] = v;
            }
            let role = role.map(|r| ActorRole::parse(Some(&r)));
            (
                u,
                UserState {
                    hours: h,
                    last_access_at: last,
                    day,
                    day_patients: pats.into_iter().collect(),
                    baseline_days: bd,
                    baseline_mean: bm,
                    disabled_at: dis,
                    disabled_seq: dseq,
                    role,
                    dirty: false,
                },
            )
        })
        .collect())
}

async fn write_users(conn: &mut PgConnection, org: Uuid, users: &HashMap<Uuid, UserState>) -> Result<(), sqlx::Error> {
    let dirty: Vec<serde_json::Value> = users
        .iter()
        .filter(|(_, s)| s.dirty)
        .map(|(u, s)| {
            serde_json::json!({
                "user_id": u, "hours": s.hours, "last_access_at": s.last_access_at, "day": s.day,
                "day_patients": s.day_patients, "baseline_days": s.baseline_days, "baseline_mean": s.baseline_mean,
                "disabled_at": s.disabled_at, "disabled_seq": s.disabled_seq, "role": s.role.map(ActorRole::as_str),
            })
        })
        .collect();
    if dirty.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO monitor_user_state (user_id, org_id, hours, last_access_at, day, day_patients, baseline_days, \
             baseline_mean, disabled_at, disabled_seq, role) \
         SELECT s.user_id, $1, ARRAY(SELECT jsonb_array_elements_text(s.hours)::int8), s.last_access_at, s.day, \
                ARRAY(SELECT jsonb_array_elements_text(s.day_patients)::uuid), s.baseline_days, s.baseline_mean, \
                s.disabled_at, s.disabled_seq, s.role \
         FROM jsonb_to_recordset($2) AS s(user_id uuid, hours jsonb, last_access_at timestamptz, day date, \
              day_patients jsonb, baseline_days int4, baseline_mean float8, disabled_at timestamptz, disabled_seq int8, role text) \
         ON CONFLICT (user_id) DO UPDATE SET hours = EXCLUDED.hours, last_access_at = EXCLUDED.last_access_at, \
             day = EXCLUDED.day, day_patients = EXCLUDED.day_patients, baseline_days = EXCLUDED.baseline_days, \
             baseline_mean = EXCLUDED.baseline_mean, disabled_at = EXCLUDED.disabled_at, \
             disabled_seq = EXCLUDED.disabled_seq, role = EXCLUDED.role",
    )
    .bind(org)
    .bind(serde_json::Value::from(dirty))
    .execute(conn)
    .await?;
    Ok(())
}
