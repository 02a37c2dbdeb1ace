//! `custos import verify`: the proof of "no data loss" an auditor can re-run. It reads the
//! export again (streaming, the same shapes and batch limits as the import), builds from each
//! document the rows the import writes — with the plaintext of every sealed column — and
//! compares them, field by field, with what the database holds for that document (sealed
//! columns opened). Rows are matched per document and table in the order the import wrote
//! them; ids of the document's own rows are compared by position, references to other
//! documents by the id their mapping gives. Mismatches name the collection, the legacy id and
//! the field (`messages[3].body_enc`), never a value. The run records its own audit event.
//!
//! Documents the import's rules refuse (invalid, duplicates, dangling references) are
//! counted, not compared: the import rejected them and listed them in its rejects file.
//! Documents that pass the rules but have no mapping are reported as *not imported* (the
//! database refused them at import time, e.g. an email already used by another
//! organization); they do not fail the check, which is about what was imported.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::collection::{Collection, Sealer};
use super::fields::Tally;
use super::pipeline::decode;
use super::rows::Rows;
use super::source::Source;
use super::{SOURCE, activity, conversations, db_error, lookup, prescriptions, users};
use crate::audit::Outcome;
use crate::crypto::store::FieldCrypto;
use crate::db::{self, Claims};

/// Mismatches listed in the report at most (all are counted).
pub const MAX_LISTED: usize = 1000;

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub dir: std::path::PathBuf,
    pub org: Uuid,
    pub batch_size: usize,
    pub batch_bytes: usize,
    /// Who ran it (recorded in the audit event).
    pub operator: String,
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyCollection {
    pub name: &'static str,
    pub read: u64,
    /// Imported documents compared with the database.
    pub compared: u64,
    pub fields_compared: u64,
    pub documents_with_mismatches: u64,
    /// Refused by the import's rules (invalid, duplicate `_id`, dangling reference).
    pub refused_by_rules: u64,
    /// Valid by the rules but not in the database (refused by PostgreSQL at import time).
    pub not_imported: u64,
}

#[derive(Debug, Serialize)]
pub struct Mismatch {
    pub collection: &'static str,
    pub legacy_id: String,
    /// `table[i].column`, or `document` when the whole document is affected.
    pub field: String,
    pub problem: &'static str,
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub org_id: Uuid,
    pub collections: Vec<VerifyCollection>,
    pub mismatches: Vec<Mismatch>,
    pub mismatch_total: u64,
    pub not_imported_ids: Vec<(&'static str, String)>,
    pub elapsed_seconds: f64,
    pub documents_per_second: f64,
    pub ok: bool,
}

impl VerifyReport {
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "import verify: org {}", self.org_id);
        let _ = writeln!(
            s,
            "{:<15} {:>9} {:>9} {:>11} {:>9} {:>9} {:>12}",
            "collection", "read", "compared", "fields", "differ", "refused", "not imported"
        );
        for c in &self.collections {
            let _ = writeln!(
                s,
                "{:<15} {:>9} {:>9} {:>11} {:>9} {:>9} {:>12}",
                c.name,
                c.read,
                c.compared,
                c.fields_compared,
                c.documents_with_mismatches,
                c.refused_by_rules,
                c.not_imported
            );
        }
        for m in &self.mismatches {
            let _ = writeln!(s, "MISMATCH {} {} {}: {}", m.collection, m.legacy_id, m.field, m.problem);
        }
        if self.mismatch_total > self.mismatches.len() as u64 {
            let _ = writeln!(s, "… {} mismatches in all", self.mismatch_total);
        }
        for (c, id) in &self.not_imported_ids {
            let _ = writeln!(s, "not imported (see the import's rejects file): {c} {id}");
        }
        let _ = writeln!(s, "{:.1} s, {:.0} documents/s", self.elapsed_seconds, self.documents_per_second);
        let _ = writeln!(s, "{}", if self.ok { "EVERY FIELD EQUAL" } else { "MISMATCHES FOUND" });
        s
    }

    fn mismatch(&mut self, collection: &'static str, legacy_id: &str, field: String, problem: &'static str) {
        self.mismatch_total += 1;
        if self.mismatches.len() < MAX_LISTED {
            self.mismatches.push(Mismatch { collection, legacy_id: legacy_id.to_owned(), field, problem });
        }
    }
}

/// The database access of `verify`, in one place: a transaction as the `system` caller of
/// the organization (RLS applies), like the import's. Imported activity is read from the
/// audit tables by the connecting login ([`audit_rows`]): the application role may only
/// insert there.
async fn reader(pool: &PgPool, org: Uuid) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    db::begin(pool, &Claims::system(Some(org))).await
}

/// Re-reads the export and compares it with the database. `ok` is false on any mismatch.
pub async fn verify(pool: &PgPool, crypto: &FieldCrypto, opts: &VerifyOptions) -> anyhow::Result<VerifyReport> {
    let clock = Instant::now();
    let endpoint = super::endpoint(pool);
    let checked = super::check_files(&opts.dir)?;
    let mut report = VerifyReport { org_id: opts.org, ..VerifyReport::default() };
    let ctx = Ctx { pool, crypto: Arc::new(crypto.clone()), opts, endpoint: &endpoint };
    collection::<users::Users>(&ctx, checked[0], &mut report).await?;
    collection::<conversations::Conversations>(&ctx, checked[1], &mut report).await?;
    collection::<prescriptions::Prescriptions>(&ctx, checked[2], &mut report).await?;
    collection::<activity::ActivityLogs>(&ctx, checked[3], &mut report).await?;
    report.ok = report.mismatch_total == 0;
    report.elapsed_seconds = clock.elapsed().as_secs_f64();
    let read: u64 = report.collections.iter().map(|c| c.read).sum();
    report.documents_per_second = read as f64 / report.elapsed_seconds.max(1e-9);
    let compared: u64 = report.collections.iter().map(|c| c.compared).sum();
    let fields: u64 = report.collections.iter().map(|c| c.fields_compared).sum();
    let reason = format!(
        "legacy import verify by operator {}: {compared} documents and {fields} fields compared, {} mismatches",
        opts.operator, report.mismatch_total
    );
    let outcome = if report.ok { Outcome::Success } else { Outcome::Error };
    super::audit_event(pool, &endpoint, opts.org, outcome, reason).await?;
    Ok(report)
}

struct Ctx<'a> {
    pool: &'a PgPool,
    /// Shared with the comparing threads.
    crypto: Arc<FieldCrypto>,
    opts: &'a VerifyOptions,
    endpoint: &'a str,
}

/// One batch as the reading stage hands it on: decoded and checked against the import's rules.
struct Parsed<D> {
    read: u64,
    refused_by_rules: u64,
    /// Documents that no longer pass the rules: a mismatch if they were imported.
    failed: Vec<String>,
    docs: Vec<(String, D)>,
}

/// What comparing one batch found (merged into the collection's figures in batch order).
#[derive(Default)]
struct Compared {
    compared: u64,
    fields_compared: u64,
    documents_with_mismatches: u64,
    refused_by_rules: u64,
    not_imported: Vec<String>,
    mismatches: Vec<(String, String, &'static str)>,
}

impl Compared {
    fn mismatch(&mut self, legacy_id: &str, field: String, problem: &'static str) {
        self.mismatches.push((legacy_id.to_owned(), field, problem));
    }
}

/// One collection, in three stages that overlap: a thread reads and parses batch k+1 while
/// the database answers for batch k and another thread compares batch k-1 (so the two cores
/// and PostgreSQL work at once). At most four batches are in memory.
async fn collection<C>(
    ctx: &Ctx<'_>,
    checked: Option<super::source::Checked>,
    report: &mut VerifyReport,
) -> anyhow::Result<()>
where
    C: Collection + 'static,
    C::Doc: Send + 'static,
{
    let mut rep = VerifyCollection { name: C::NAME, ..VerifyCollection::default() };
    let Some(checked) = checked else {
        report.collections.push(rep);
        return Ok(());
    };
    let path = ctx.opts.dir.join(format!("{}.json", C::NAME));
    let src = Source::open(&path, checked).with_context(|| format!("cannot read {}", path.display()))?;
    let (batches, mut parsed) = tokio::sync::mpsc::channel(1);
    let reading = tokio::task::spawn_blocking({
        let (size, bytes) = (ctx.opts.batch_size, ctx.opts.batch_bytes);
        move || read_and_parse::<C>(src, path, size, bytes, &batches)
    });
    let mut in_flight: std::collections::VecDeque<tokio::task::JoinHandle<anyhow::Result<Compared>>> =
        std::collections::VecDeque::new();
    while let Some(batch) = parsed.recv().await {
        let Parsed { read, refused_by_rules, failed, docs } = batch?;
        rep.read += read;
        rep.refused_by_rules += refused_by_rules;
        if in_flight.len() >= IN_FLIGHT
            && let Some(oldest) = in_flight.pop_front()
        {
            merge(C::NAME, oldest.await??, &mut rep, report);
        }
        let (pool, crypto, org, endpoint) =
            (ctx.pool.clone(), Arc::clone(&ctx.crypto), ctx.opts.org, ctx.endpoint.to_owned());
        in_flight.push_back(tokio::spawn(async move {
            let fetched = fetch::<C>(&pool, org, docs, failed).await.map_err(|e| db_error(&endpoint, e))?;
            Ok(tokio::task::spawn_blocking(move || compare::<C>(fetched, &crypto, org)).await?)
        }));
    }
    while let Some(oldest) = in_flight.pop_front() {
        merge(C::NAME, oldest.await??, &mut rep, report);
    }
    reading.await?;
    report.collections.push(rep);
    Ok(())
}

/// Batches whose database reads and comparison run at once (each on its own connection):
/// PostgreSQL answers for one while it plans and reads the other.
const IN_FLIGHT: usize = 2;

/// One batch with what the database holds for it.
struct Fetched<D> {
    docs: Vec<(String, D)>,
    /// Documents that no longer pass the rules, and whether each was imported.
    failed: Vec<(String, bool)>,
    mapped: HashMap<String, Uuid>,
    refs: super::collection::Refs,
    stored: BTreeMap<String, Rows>,
}

/// The database stage of one batch: mappings, references and stored rows, in one
/// transaction as the organization's `system` caller ([`reader`]).
async fn fetch<C: Collection>(
    pool: &PgPool,
    org: Uuid,
    docs: Vec<(String, C::Doc)>,
    failed: Vec<String>,
) -> Result<Fetched<C::Doc>, sqlx::Error> {
    let mut tx = reader(pool, org).await?;
    let ids: Vec<String> = docs.iter().map(|(id, _)| id.clone()).chain(failed.iter().cloned()).collect();
    let mapped = lookup::mapped(&mut tx, org, SOURCE, C::NAME, &ids).await?;
    let failed = failed.into_iter().map(|id| (id.clone(), mapped.contains_key(&id))).collect();
    let mut wanted = Vec::new();
    for (_, doc) in &docs {
        C::references(doc, &mut wanted);
    }
    let refs = lookup::refs(&mut tx, org, SOURCE, &wanted).await?;
    let present: Vec<String> =
        docs.iter().filter(|(id, _)| mapped.contains_key(id)).map(|(id, _)| id.clone()).collect();
    let stored = stored_rows(&mut tx, org, C::NAME, &present).await?;
    tx.commit().await?;
    Ok(Fetched { docs, failed, mapped, refs, stored })
}

/// The reading stage: batches of the file, decoded and parsed, sent on until the file ends,
/// a read fails (sent as the error) or the receiver is gone (the run failed elsewhere).
fn read_and_parse<C: Collection>(
    mut src: Source,
    path: std::path::PathBuf,
    batch_size: usize,
    batch_bytes: usize,
    out: &tokio::sync::mpsc::Sender<anyhow::Result<Parsed<C::Doc>>>,
) {
    let today = (chrono::Utc::now() + chrono::Duration::hours(14)).date_naive();
    let mut owners: HashSet<String> = HashSet::new();
    loop {
        let lines = match src.next_batch(batch_size, batch_bytes) {
            Ok(lines) if lines.is_empty() => return,
            Ok(lines) => lines,
            Err(e) => {
                let _ =
                    out.blocking_send(Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))));
                return;
            }
        };
        let mut batch = Parsed { read: lines.len() as u64, refused_by_rules: 0, failed: Vec::new(), docs: Vec::new() };
        let mut scratch = Tally::default();
        for raw in &lines {
            match decode(raw) {
                (Some(id), Ok(map)) if owners.insert(id.clone()) => {
                    match C::parse(&map, &raw.text, &id, &mut scratch, today) {
                        Ok(doc) => batch.docs.push((id, doc)),
                        Err(_) => batch.failed.push(id),
                    }
                }
                (Some(id), _) => {
                    owners.insert(id);
                    batch.refused_by_rules += 1;
                }
                (None, _) => batch.refused_by_rules += 1,
            }
        }
        if out.blocking_send(Ok(batch)).is_err() {
            return;
        }
    }
}

/// Adds one compared batch to the collection's figures and the report.
fn merge(name: &'static str, done: Compared, rep: &mut VerifyCollection, report: &mut VerifyReport) {
    rep.compared += done.compared;
    rep.fields_compared += done.fields_compared;
    rep.documents_with_mismatches += done.documents_with_mismatches;
    rep.refused_by_rules += done.refused_by_rules;
    rep.not_imported += done.not_imported.len() as u64;
    report.not_imported_ids.extend(done.not_imported.into_iter().map(|id| (name, id)));
    for (id, field, problem) in done.mismatches {
        report.mismatch(name, &id, field, problem);
    }
}

/// The comparing stage: builds each document's rows as the import would (plaintext where it
/// seals), opens the stored sealed values and compares field by field.
fn compare<C: Collection>(fetched: Fetched<C::Doc>, crypto: &FieldCrypto, org: Uuid) -> Compared {
    let Fetched { docs, failed, mapped, refs, mut stored } = fetched;
    let mut out = Compared::default();
    for (id, imported) in failed {
        if imported {
            out.mismatch(&id, "document".into(), "imported, but the source no longer passes the rules");
            out.documents_with_mismatches += 1;
        } else {
            out.refused_by_rules += 1;
        }
    }
    let refs = &refs;
    let mut sealer = Sealer::plain(crypto, org);
    let keyring = crypto.keyring.snapshot();
    for (id, doc) in docs {
        let mut rows = Rows::default();
        let built = C::build(doc, &id, refs, &mut sealer, &mut rows).is_ok();
        match (built, mapped.contains_key(&id)) {
            (true, true) => {}
            (true, false) => {
                out.not_imported.push(id);
                continue;
            }
            (false, true) => {
                out.mismatch(&id, "document".into(), "imported, but its references no longer resolve");
                out.documents_with_mismatches += 1;
                continue;
            }
            (false, false) => {
                out.refused_by_rules += 1;
                continue;
            }
        }
        let mut db_rows = stored.remove(&id).unwrap_or_default();
        for (table, _) in rows.tables() {
            if let Some(t) = db_rows.table_mut(table) {
                t.open_sealed(table, &mut |table, column, row, sealed| {
                    // A value that does not open compares unequal with anything the source holds.
                    keyring
                        .open(table, column, row, sealed)
                        .map(|mut p| std::mem::take(&mut *p))
                        .unwrap_or_else(|_| b"\0unopenable".to_vec())
                });
            }
        }
        let mut differs = false;
        let fields = rows.compare(&db_rows, &mut |field, problem| {
            differs = true;
            out.mismatch(&id, field, problem);
        });
        out.compared += 1;
        out.fields_compared += fields;
        out.documents_with_mismatches += u64::from(differs);
    }
    out
}

/// `(table, SELECT …)` per collection: the rows of the documents whose legacy ids are `$3`,
/// each with its document's legacy id as `owner`, columns named and typed like [`Rows`].
fn queries(collection: &str) -> &'static [(&'static str, &'static str)] {
    match collection {
        "users" => &[
            (
                "users",
                "SELECT m.legacy_id AS owner, x.id, x.role::text AS role, x.email_enc, x.email_bidx, x.display_name_enc, \
                 x.password_hash, x.status::text AS status, x.created_at FROM legacy_id_map m JOIN users x ON x.id = m.new_id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'users' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
            (
                "patients",
                "SELECT m.legacy_id AS owner, x.id, x.user_id, x.mrn_enc, x.mrn_bidx, x.given_name_enc, x.family_name_enc, \
                 x.birth_date_enc, x.sex::text AS sex, x.ssn_enc, x.phone_enc, x.address_enc, x.created_at, x.email_enc, \
                 x.email_bidx FROM legacy_id_map m JOIN patients x ON x.user_id = m.new_id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'users' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
            (
                "patient_medical_info",
                "SELECT m.legacy_id AS owner, x.id, x.patient_id, x.blood_type::text AS blood_type, \
                 x.height_cm::float8 AS height_cm, x.weight_kg::float8 AS weight_kg, x.emergency_contact_enc \
                 FROM legacy_id_map m JOIN patients p ON p.user_id = m.new_id JOIN patient_medical_info x ON x.patient_id = p.id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'users' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
            (
                "allergies",
                "SELECT m.legacy_id AS owner, x.id, x.patient_id, x.substance, x.reaction_enc, x.severity::text AS severity, \
                 x.status::text AS status, x.created_at \
                 FROM legacy_id_map m JOIN patients p ON p.user_id = m.new_id JOIN allergies x ON x.patient_id = p.id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'users' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
            (
                "medications",
                "SELECT m.legacy_id AS owner, x.id, x.patient_id, x.name, x.dose::float8 AS dose, x.unit::text AS unit, \
                 x.route::text AS route, x.frequency, x.start_date, x.end_date, x.status::text AS status, x.notes_enc, \
                 x.created_at FROM legacy_id_map m JOIN patients p ON p.user_id = m.new_id \
                 JOIN medications x ON x.patient_id = p.id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'users' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
            (
                "medical_history",
                "SELECT m.legacy_id AS owner, x.id, x.patient_id, x.icd10_code, x.description, x.diagnosed_on, \
                 x.resolved_on, x.notes_enc, x.created_at FROM legacy_id_map m JOIN patients p ON p.user_id = m.new_id \
                 JOIN medical_history x ON x.patient_id = p.id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'users' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
        ],
        "conversations" => &[
            (
                "conversations",
                "SELECT m.legacy_id AS owner, x.id, x.patient_id, x.subject_enc, x.status::text AS status, \
                 x.assigned_clinician_id, x.opened_by, x.closed_at, x.created_at, x.updated_at \
                 FROM legacy_id_map m JOIN conversations x ON x.id = m.new_id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'conversations' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
            (
                "messages",
                "SELECT m.legacy_id AS owner, x.id, x.conversation_id, x.patient_id, x.sender_id, x.body_enc, x.created_at \
                 FROM legacy_id_map m JOIN messages x ON x.conversation_id = m.new_id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'conversations' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
            (
                "symptoms",
                "SELECT m.legacy_id AS owner, x.id, x.conversation_id, x.patient_id, x.name, x.severity::int2 AS severity, \
                 x.onset, x.created_at FROM legacy_id_map m JOIN symptoms x ON x.conversation_id = m.new_id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'conversations' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
            (
                "attachments",
                "SELECT m.legacy_id AS owner, x.id, x.patient_id, x.conversation_id, x.uploaded_by, x.filename_enc, \
                 x.content_type, x.size_bytes::int8 AS size_bytes, x.sha256, x.content_enc, x.created_at \
                 FROM legacy_id_map m JOIN attachments x ON x.conversation_id = m.new_id \
                 WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'conversations' AND m.legacy_id = ANY($3) ORDER BY x.id",
            ),
        ],
        "prescriptions" => &[(
            "prescriptions",
            "SELECT m.legacy_id AS owner, x.id, x.patient_id, x.prescriber_id, x.medication, x.dose, \
             x.quantity::int4 AS quantity, x.refills_allowed::int2 AS refills_allowed, \
             x.refills_used::int2 AS refills_used, x.instructions_enc, x.issued_at, x.expires_at, \
             x.status::text AS status, x.cancelled_at, x.cancel_reason_enc, x.created_at \
             FROM legacy_id_map m JOIN prescriptions x ON x.id = m.new_id \
             WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'prescriptions' AND m.legacy_id = ANY($3) ORDER BY x.id",
        )],
        _ => &[],
    }
}

/// The imported activity events, in the inbox until the sequencer moves them into the log: read
/// through `custos.imported_events` (policies/50_rls_audit.sql), since the application role
/// may not read the audit tables.
const AUDIT_ROWS: &str = "SELECT m.legacy_id AS owner, a.event_id, a.occurred_at, a.actor_id, a.actor_role, \
     a.action, a.resource_type, a.resource_id, a.patient_id, a.outcome, a.client_ip, a.user_agent, a.reason \
     FROM legacy_id_map m JOIN custos.imported_events(ARRAY(SELECT new_id FROM legacy_id_map \
       WHERE org_id = $1 AND source = $2 AND collection = 'activity_logs' AND legacy_id = ANY($3))) a \
       ON a.event_id = m.new_id \
     WHERE m.org_id = $1 AND m.source = $2 AND m.collection = 'activity_logs' AND m.legacy_id = ANY($3) ORDER BY a.event_id";

/// The stored rows of the given documents, grouped by legacy id.
async fn stored_rows(
    conn: &mut PgConnection,
    org: Uuid,
    collection: &str,
    ids: &[String],
) -> Result<BTreeMap<String, Rows>, sqlx::Error> {
    let mut out: BTreeMap<String, Rows> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut add = |table: &str, rows: Vec<sqlx::postgres::PgRow>| -> Result<(), sqlx::Error> {
        use sqlx::Row as _;
        for row in rows {
            let owner: String = row.try_get("owner")?;
            if let Some(t) = out.entry(owner).or_default().table_mut(table) {
                t.push_row(&row)?;
            }
        }
        Ok(())
    };
    if collection == "activity_logs" {
        let rows = sqlx::query(AUDIT_ROWS).bind(org).bind(SOURCE).bind(ids).fetch_all(&mut *conn).await?;
        add("audit_inbox", rows)?;
    }
    for (table, sql) in queries(collection) {
        let rows = sqlx::query(*sql).bind(org).bind(SOURCE).bind(ids).persistent(false).fetch_all(&mut *conn).await?;
        add(table, rows)?;
    }
    Ok(out)
}
