//! Legacy import: a MongoDB medical-chat export (`mongoexport`, Extended JSON v2, one file
//! per collection) into the normalized, sealed schema, with a no-data-loss report.
//!
//! Order: users → conversations → prescriptions → activity logs, so every reference points
//! to something already committed and imported activity enters the ledger after the data
//! it refers to. Each file is streamed in batches (memory follows `--batch-size`); each
//! batch is one transaction. `legacy_id_map` makes re-runs skip what is in, so a killed run
//! re-run ends where one clean run would. `--dry-run` does all of it inside one transaction
//! (a savepoint per batch) that is rolled back. Field mapping: docs/import.md.

mod activity;
mod collection;
mod conversations;
pub mod ejson;
mod fields;
mod lookup;
mod pipeline;
mod prescriptions;
mod progress;
mod reject;
pub mod report;
mod rows;
mod source;
mod users;
pub mod verify;
mod write;
mod write_cases;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use base64::Engine as _;
use chrono::{NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use self::collection::{Collection, Sealer};
use self::reject::{Reason, RejectLine, RejectsFile};
pub use self::report::Report;
use self::source::{RawLine, Source};
use self::write::TableCounts;
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::crypto::store::FieldCrypto;
use crate::db::{self, Claims};

/// `legacy_id_map.source` of this importer.
pub const SOURCE: &str = "mongo";
/// Sealed values re-opened for the report: a uniform random sample of this many per table,
/// over every value the run sealed or found already imported.
pub const SAMPLE_PER_TABLE: usize = 256;
/// Default of `--batch-size`: a batch closes at this many documents…
pub const DEFAULT_BATCH_DOCS: usize = 1000;
/// …or once it holds this many bytes of source text (`--batch-bytes`), whichever comes first.
pub const DEFAULT_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// The collections, in import order.
pub const COLLECTIONS: [&str; 4] = ["users", "conversations", "prescriptions", "activity_logs"];

/// How to run an import.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub org: Uuid,
    pub dry_run: bool,
    pub batch_size: usize,
    /// A batch also closes once it holds this many bytes of source text.
    pub batch_bytes: usize,
    pub rejects: PathBuf,
    /// No progress output at all.
    pub quiet: bool,
    /// Who ran it (recorded in the audit event): an OS account name, not a secret.
    pub operator: String,
    /// Testing crash safety: abort the process (like `kill -9`) just before committing this
    /// (1-based) batch.
    pub crash_before_commit: Option<u64>,
    /// Testing resumes in-process: stop with an error just before committing this (1-based)
    /// batch, its transaction left uncommitted (as when the connection is lost).
    pub interrupt_before_commit: Option<u64>,
}

/// State shared by the batches of one run.
pub struct Run<'a> {
    pub org: Uuid,
    pub source: String,
    pub today: NaiveDate,
    pub sealer: Sealer<'a>,
    pub report: Report,
    pub expected: TableCounts,
    pub actual: TableCounts,
    /// `host:port` of the database, for errors.
    pub endpoint: String,
    rejects: RejectsFile,
}

impl Run<'_> {
    fn reject(
        &mut self,
        collection: &str,
        raw: &RawLine,
        legacy_id: Option<&str>,
        item: Option<&str>,
        reason: &Reason,
    ) -> anyhow::Result<()> {
        tracing::debug!(collection, line = raw.line, code = reason.code(), "document rejected");
        let raw_base64 = raw.bytes.as_ref().map(|b| base64::engine::general_purpose::STANDARD.encode(b));
        self.rejects
            .write(&RejectLine {
                collection,
                line: raw.line,
                index: raw.index,
                legacy_id,
                item,
                code: reason.code(),
                reason: reason.to_string(),
                raw: (raw.unreadable.is_none()).then_some(raw.text.as_str()),
                raw_base64,
            })
            .context("writing the rejects file")
    }
}

/// The database's `host:port` as the pool connects to it.
pub fn endpoint(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!("{}:{}", o.get_host(), o.get_port())
}

/// A database error as one line naming the server and the cause, never a value (PostgreSQL's
/// messages can quote data, so only its SQLSTATE and constraint are kept).
pub fn db_error(endpoint: &str, e: sqlx::Error) -> anyhow::Error {
    let msg = match &e {
        sqlx::Error::Io(io) => format!("the connection to PostgreSQL at {endpoint} failed: {io}"),
        sqlx::Error::Tls(_) => format!("TLS with PostgreSQL at {endpoint} failed"),
        sqlx::Error::PoolTimedOut => format!("no connection to PostgreSQL at {endpoint} (timed out: is it running?)"),
        sqlx::Error::PoolClosed => format!("the connection pool to PostgreSQL at {endpoint} is closed"),
        sqlx::Error::Database(d) => format!(
            "PostgreSQL at {endpoint} refused a statement (SQLSTATE {}{})",
            d.code().unwrap_or_default(),
            d.constraint().map(|c| format!(", constraint {c}")).unwrap_or_default()
        ),
        other => format!("database error with PostgreSQL at {endpoint}: {other}"),
    };
    anyhow::anyhow!(msg)
}

/// Connects once, directly, so a server that is down is reported by its real cause
/// ("connection refused at host:port") instead of a pool time-out.
async fn check_database(pool: &PgPool, endpoint: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let conn = PgConnection::connect_with(&pool.connect_options()).await.map_err(|e| match e {
        sqlx::Error::Io(io) => anyhow::anyhow!("cannot connect to PostgreSQL at {endpoint}: {io}"),
        other => db_error(endpoint, other),
    })?;
    conn.close().await.map_err(|e| db_error(endpoint, e))
}

/// Every collection file checked before anything is written: readable, shape recognized.
fn check_files(dir: &std::path::Path) -> anyhow::Result<Vec<Option<source::Checked>>> {
    let mut out = Vec::with_capacity(COLLECTIONS.len());
    let mut problems = Vec::new();
    for name in COLLECTIONS {
        let path = dir.join(format!("{name}.json"));
        match source::check(&path) {
            Ok(c) => out.push(c),
            Err(why) => problems.push(format!("{}: {why}", path.display())),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        anyhow::bail!("nothing was imported; fix these files first: {}", problems.join("; "))
    }
}

/// Runs the import and returns its report (check `report.balanced`).
pub async fn run(pool: &PgPool, crypto: &FieldCrypto, opts: &Options) -> anyhow::Result<Report> {
    let clock = Instant::now();
    let endpoint = endpoint(pool);
    let checked = check_files(&opts.dir)?;
    check_database(pool, &endpoint).await?;
    let rejects = RejectsFile::create(&opts.rejects)
        .with_context(|| format!("cannot create the rejects file {}", opts.rejects.display()))?;
    let claims = Claims::system(Some(opts.org));
    let mut dry =
        if opts.dry_run { Some(db::begin(pool, &claims).await.map_err(|e| db_error(&endpoint, e))?) } else { None };
    let mut run = Run {
        org: opts.org,
        source: SOURCE.to_owned(),
        today: (Utc::now() + chrono::Duration::hours(14)).date_naive(),
        sealer: Sealer::new(crypto, opts.org, SAMPLE_PER_TABLE),
        report: Report {
            org_id: opts.org,
            source: SOURCE.to_owned(),
            dry_run: opts.dry_run,
            rejects_file: opts.rejects.display().to_string(),
            batch_size: opts.batch_size,
            batch_bytes: opts.batch_bytes,
            ..Report::default()
        },
        expected: TableCounts::new(),
        actual: TableCounts::new(),
        endpoint,
        rejects,
    };
    if dry.is_none() {
        let started = format!(
            "legacy MongoDB import started by operator {}; files: {}",
            opts.operator,
            COLLECTIONS
                .iter()
                .zip(&checked)
                .map(|(n, c)| match c {
                    Some(c) => format!("{n}.json {} bytes ({:?})", c.len, c.shape).to_lowercase(),
                    None => format!("{n}.json absent"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        audit_event(pool, &run.endpoint, opts.org, Outcome::Success, started).await?;
    }
    // Every batch of a real run on one connection: its buffers grow to the largest batch once,
    // instead of on each connection of the pool in turn (memory follows the batch bytes).
    let mut writer = match dry {
        None => Some(pool.acquire().await.map_err(|e| db_error(&run.endpoint, e))?),
        Some(_) => None,
    };
    let result = run_collections(pool, &mut dry, &mut writer, &mut run, opts, &checked).await;
    drop(writer);
    let result = match result {
        Ok(()) => finish(pool, crypto, dry, &mut run, opts, clock).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result
        && !opts.dry_run
    {
        // The rows already committed stay attributable: a failure event with the counts so far.
        let reason = truncate(
            format!(
                "legacy MongoDB import by operator {} FAILED; {}; cause: {}",
                opts.operator,
                counts(&run.report),
                e
            ),
            1000,
        );
        if let Err(again) = audit_event(pool, &run.endpoint, opts.org, Outcome::Error, reason).await {
            tracing::error!(error = %again, "could not record the import's failure event");
        }
    }
    result.map(|()| run.report)
}

/// Where batches are written: the dry run's one transaction, or the real run's connection.
struct Target<'t> {
    dry: &'t mut Option<Transaction<'static, Postgres>>,
    writer: &'t mut Option<PoolConnection<Postgres>>,
}

async fn run_collections(
    pool: &PgPool,
    dry: &mut Option<Transaction<'static, Postgres>>,
    writer: &mut Option<PoolConnection<Postgres>>,
    run: &mut Run<'_>,
    opts: &Options,
    checked: &[Option<source::Checked>],
) -> anyhow::Result<()> {
    let mut batches = 0u64;
    let mut t = Target { dry, writer };
    collection::<users::Users>(pool, &mut t, run, opts, checked[0], &mut batches).await?;
    collection::<conversations::Conversations>(pool, &mut t, run, opts, checked[1], &mut batches).await?;
    collection::<prescriptions::Prescriptions>(pool, &mut t, run, opts, checked[2], &mut batches).await?;
    collection::<activity::ActivityLogs>(pool, &mut t, run, opts, checked[3], &mut batches).await?;
    run.rejects.flush().context("writing the rejects file")
}

/// The whole-run checks, the report, and the completion event (or the dry run's rollback).
async fn finish(
    pool: &PgPool,
    crypto: &FieldCrypto,
    mut dry: Option<Transaction<'static, Postgres>>,
    run: &mut Run<'_>,
    opts: &Options,
    clock: Instant,
) -> anyhow::Result<()> {
    let ep = run.endpoint.clone();
    let dbe = |e| db_error(&ep, e);
    let mut digest = Sha256::new();
    for c in &run.report.collections {
        digest.update(format!("{}.json {}\n", c.name, if c.file_present { c.sha256.as_str() } else { "absent" }));
    }
    run.report.source_sha256 = hex::encode(digest.finalize());

    let claims = Claims::system(Some(opts.org));
    let mut own: Option<Transaction<'static, Postgres>> = None;
    let conn: &mut PgConnection = match dry.as_mut() {
        Some(tx) => tx,
        None => own.insert(db::begin(pool, &claims).await.map_err(dbe)?),
    };
    run.report.sealed_sample =
        report::verify_samples(conn, &crypto.keyring.snapshot(), run.sealer.reservoirs()).await.map_err(dbe)?;
    run.report.orphans = report::orphans(conn, opts.org, SOURCE).await.map_err(dbe)?;
    let (expected, actual) = (std::mem::take(&mut run.expected), std::mem::take(&mut run.actual));
    run.report.elapsed_seconds = clock.elapsed().as_secs_f64();
    let written: u64 = run.report.rows_written.values().sum();
    run.report.rows_per_second = written as f64 / run.report.elapsed_seconds.max(1e-9);
    run.report.finish(&expected, &actual);
    match (dry, own) {
        (Some(tx), _) => tx.rollback().await.map_err(dbe)?,
        (None, Some(mut tx)) => {
            audit::record(&mut tx, &AuditContext::from_claims(&claims), &import_event(&run.report, opts))
                .await
                .map_err(dbe)?;
            tx.commit().await.map_err(dbe)?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Records one import event in its own transaction (started, per collection, failed).
async fn audit_event(pool: &PgPool, endpoint: &str, org: Uuid, outcome: Outcome, reason: String) -> anyhow::Result<()> {
    let claims = Claims::system(Some(org));
    let dbe = |e| db_error(endpoint, e);
    let mut tx = db::begin(pool, &claims).await.map_err(dbe)?;
    let event = AuditEvent::new(Action::Import, "legacy_import", outcome).reason(truncate(reason, 1000)).in_org(org);
    audit::record(&mut tx, &AuditContext::from_claims(&claims), &event).await.map_err(dbe)?;
    tx.commit().await.map_err(dbe)
}

/// Cuts an audit reason to the ledger's limit (it holds counts and names only).
fn truncate(mut s: String, max: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
    s
}

fn counts(r: &Report) -> String {
    r.collections
        .iter()
        .map(|c| {
            format!(
                "{} read {} imported {} already {} rejected {}",
                c.name, c.read, c.imported, c.already_imported, c.rejected
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn collection<C: Collection>(
    pool: &PgPool,
    target: &mut Target<'_>,
    run: &mut Run<'_>,
    opts: &Options,
    checked: Option<source::Checked>,
    batches: &mut u64,
) -> anyhow::Result<()> {
    let path = opts.dir.join(format!("{}.json", C::NAME));
    let mut rep = report::CollectionReport { name: C::NAME, ..Default::default() };
    let Some(checked) = checked else {
        run.report.collections.push(rep);
        return Ok(());
    };
    let mut src = Source::open(&path, checked).with_context(|| format!("cannot read {}", path.display()))?;
    rep.file_present = true;
    rep.shape = Some(src.shape);
    // In the report from the start, so a run that fails part-way reports the counts so far.
    let idx = run.report.collections.len();
    run.report.collections.push(rep);
    let ep = run.endpoint.clone();
    let dbe = |e| db_error(&ep, e);
    let claims = Claims::system(Some(opts.org));
    let dry = &mut *target.dry;
    let mut state = pipeline::FileState::default();
    let mut progress = progress::Progress::new(C::NAME, src.len, opts.quiet);
    let mut in_collection = 0u64;
    loop {
        let lines = src
            .next_batch(opts.batch_size, opts.batch_bytes)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if lines.is_empty() {
            break;
        }
        run.report.collections[idx].read += lines.len() as u64;
        in_collection += 1;
        if in_collection.is_power_of_two() {
            refresh_statistics(pool, dry.as_mut(), C::NAME).await;
        }
        let outcome = match dry.as_mut() {
            Some(tx) => {
                sqlx::query("SAVEPOINT import_batch").execute(&mut **tx).await.map_err(dbe)?;
                let o = pipeline::batch::<C>(tx, run, lines, &mut state).await?;
                sqlx::query("RELEASE SAVEPOINT import_batch").execute(&mut **tx).await.map_err(dbe)?;
                o
            }
            None => {
                let Some(conn) = target.writer.as_mut() else { anyhow::bail!("no connection to write with") };
                let mut tx = sqlx::Connection::begin(&mut **conn).await.map_err(dbe)?;
                db::tx::set_claims(&mut tx, &claims).await.map_err(dbe)?;
                let o = pipeline::batch::<C>(&mut tx, run, lines, &mut state).await?;
                *batches += 1;
                if opts.crash_before_commit == Some(*batches) {
                    // Simulates `kill -9`: no unwinding, no rollback, the connection just dies.
                    std::process::abort();
                }
                if opts.interrupt_before_commit == Some(*batches) {
                    anyhow::bail!("interrupted before committing batch {batches} (test hook)");
                }
                tx.commit().await.map_err(dbe)?;
                o
            }
        };
        let rep = &mut run.report.collections[idx];
        rep.imported += outcome.imported;
        rep.already_imported += outcome.already;
        rep.rejected += outcome.rejected;
        rep.items_rejected += outcome.items_rejected;
        progress.update(src.bytes_read, progress_counts(rep));
    }
    let sha256 = hex::encode(src.finish().with_context(|| format!("cannot read {}", path.display()))?);
    let rep = &mut run.report.collections[idx];
    progress.finish(progress_counts(rep));
    rep.sha256 = sha256;
    rep.unknown_fields = state.tally.unknown;
    rep.normalized = state.tally.normalized;
    if dry.is_none() {
        let reason = format!(
            "legacy MongoDB import by operator {}: {}.json read {} imported {} already {} rejected {} \
             (items rejected {}); file sha256 {}",
            opts.operator,
            C::NAME,
            rep.read,
            rep.imported,
            rep.already_imported,
            rep.rejected,
            rep.items_rejected,
            rep.sha256
        );
        audit_event(pool, &run.endpoint, opts.org, Outcome::Success, reason).await?;
    }
    Ok(())
}

/// Tables the batches look up and check: they grow from nothing during an import, and with
/// the planner's statistics still saying "empty" the look-ups (which also evaluate the RLS
/// policies row by row) go wrong in two ways: `legacy_id_map` is read by the (org, source,
/// collection) prefix of its unique index, filtering every row of the collection by the id
/// list, and joins start from a scan of every row of the organization (the RLS `org_id`
/// qual looks selective). So the statistics of the tables a collection's batches read are
/// refreshed after 1, 2, 4, 8, … batches of it, from a small sample (3,000 rows per table
/// instead of 30,000: row counts and the collection shares are what these plans need): at
/// 100k patients that costs ~0.1-0.2 s where ANALYZE of every imported table with the default
/// sample took 1.5 s. ANALYZE runs as the connecting role (the app role cannot, owning
/// nothing); where that is not allowed we carry on with autovacuum's statistics.
async fn refresh_statistics(pool: &PgPool, dry: Option<&mut Transaction<'static, Postgres>>, collection: &str) {
    let tables = match collection {
        "users" => "legacy_id_map, users, patients, patient_medical_info, allergies, medications, medical_history",
        "conversations" => "legacy_id_map, users, patients, conversations, messages, symptoms, attachments",
        "prescriptions" => "legacy_id_map, users, patients, prescriptions",
        _ => "legacy_id_map, users, patients, conversations, prescriptions",
    };
    let analyze = sqlx::AssertSqlSafe(format!("ANALYZE {tables}"));
    let result = match dry {
        // A dry run's rows exist only in its own transaction, where ANALYZE sees them too; it
        // runs there as the connecting role, then the transaction goes back to `custos_app`.
        Some(tx) => {
            let step = async {
                sqlx::query("SAVEPOINT import_stats").execute(&mut **tx).await?;
                sqlx::query("SET LOCAL ROLE NONE").execute(&mut **tx).await?;
                sqlx::query("SET LOCAL default_statistics_target = 10").execute(&mut **tx).await?;
                sqlx::query(analyze).execute(&mut **tx).await?;
                sqlx::query("RELEASE SAVEPOINT import_stats").execute(&mut **tx).await?;
                Ok::<_, sqlx::Error>(())
            };
            let r = step.await;
            if r.is_err() {
                let _ = sqlx::query("ROLLBACK TO SAVEPOINT import_stats").execute(&mut **tx).await;
            }
            // RELEASE keeps the SET LOCALs: back to the application role either way.
            let back = sqlx::query("SELECT set_config('role', 'custos_app', true)").execute(&mut **tx).await;
            r.and(back.map(|_| ()))
        }
        None => {
            let step = async {
                let mut tx = pool.begin().await?;
                sqlx::query("SET LOCAL default_statistics_target = 10").execute(&mut *tx).await?;
                sqlx::query(analyze).execute(&mut *tx).await?;
                tx.commit().await
            };
            step.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "could not refresh planner statistics; continuing");
    }
}

/// The import's own audit event: who, what (counts per collection), and the source digest.
fn import_event(r: &Report, opts: &Options) -> AuditEvent {
    let counts: Vec<String> = r
        .collections
        .iter()
        .map(|c| {
            format!(
                "{} read {} imported {} already {} rejected {}",
                c.name, c.read, c.imported, c.already_imported, c.rejected
            )
        })
        .collect();
    let reason = format!(
        "legacy MongoDB import by operator {} completed; source sha256 {}; {}; rows written {}; {}",
        opts.operator,
        r.source_sha256,
        counts.join("; "),
        r.rows_written_total,
        if r.balanced { "balanced" } else { "NOT balanced" }
    );
    let outcome = if r.balanced { Outcome::Success } else { Outcome::Error };
    AuditEvent::new(Action::Import, "legacy_import", outcome).reason(reason).in_org(opts.org)
}

fn progress_counts(rep: &report::CollectionReport) -> progress::Counts {
    progress::Counts { read: rep.read, imported: rep.imported, already: rep.already_imported, rejected: rep.rejected }
}
