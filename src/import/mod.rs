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
mod write;
mod write_cases;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use self::collection::{Collection, Sample, Sealer};
use self::fields::Unknown;
use self::reject::{Reason, RejectLine, RejectsFile};
pub use self::report::Report;
use self::source::{RawLine, Source};
use self::write::TableCounts;
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::crypto::store::FieldCrypto;
use crate::db::{self, Claims};

/// `legacy_id_map.source` of this importer.
pub const SOURCE: &str = "mongo";
/// Sealed values re-opened for the report, at most (one document per batch is sampled).
pub const MAX_SAMPLES: usize = 2000;

/// How to run an import.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub org: Uuid,
    pub dry_run: bool,
    pub batch_size: usize,
    pub rejects: PathBuf,
    /// No progress output at all.
    pub quiet: bool,
    /// Who ran it (recorded in the audit event): an OS account name, not a secret.
    pub operator: String,
    /// Testing crash safety: abort the process (like `kill -9`) just before committing this
    /// (1-based) batch.
    pub crash_before_commit: Option<u64>,
}

/// State shared by the batches of one run.
pub struct Run<'a> {
    pub org: Uuid,
    pub source: String,
    /// The database clock at the start: mappings at or after it were made by this run.
    pub started: DateTime<Utc>,
    pub today: NaiveDate,
    pub sealer: Sealer<'a>,
    pub report: Report,
    pub expected: TableCounts,
    pub actual: TableCounts,
    rejects: RejectsFile,
}

impl Run<'_> {
    fn reject(
        &mut self,
        collection: &str,
        raw: &RawLine,
        legacy_id: Option<&str>,
        reason: &Reason,
    ) -> anyhow::Result<()> {
        tracing::debug!(collection, line = raw.line, code = reason.code(), "document rejected");
        self.rejects
            .write(&RejectLine {
                collection,
                line: raw.line,
                legacy_id,
                code: reason.code(),
                reason: reason.to_string(),
                raw: &raw.text,
            })
            .context("writing the rejects file")
    }

    fn sample(&mut self, s: Sample) -> bool {
        if self.sealer.samples.len() >= MAX_SAMPLES {
            return false;
        }
        self.sealer.samples.push(s);
        true
    }
}

/// Runs the import and returns its report (check `report.balanced`).
pub async fn run(pool: &PgPool, crypto: &FieldCrypto, opts: &Options) -> anyhow::Result<Report> {
    let clock = Instant::now();
    let claims = Claims::system(Some(opts.org));
    let mut dry = if opts.dry_run { Some(db::begin(pool, &claims).await.context("database")?) } else { None };
    let started: DateTime<Utc> = match dry.as_mut() {
        Some(tx) => sqlx::query_scalar("SELECT now()").fetch_one(&mut **tx).await,
        None => sqlx::query_scalar("SELECT now()").fetch_one(pool).await,
    }
    .context("database")?;
    let rejects = RejectsFile::create(&opts.rejects)
        .with_context(|| format!("cannot create the rejects file {}", opts.rejects.display()))?;
    let mut run = Run {
        org: opts.org,
        source: SOURCE.to_owned(),
        started,
        today: (Utc::now() + chrono::Duration::hours(14)).date_naive(),
        sealer: Sealer::new(crypto, opts.org),
        report: Report {
            org_id: opts.org,
            source: SOURCE.to_owned(),
            dry_run: opts.dry_run,
            rejects_file: opts.rejects.display().to_string(),
            ..Report::default()
        },
        expected: TableCounts::new(),
        actual: TableCounts::new(),
        rejects,
    };
    let mut batches = 0u64;
    collection::<users::Users>(pool, &mut dry, &mut run, opts, &mut batches).await?;
    collection::<conversations::Conversations>(pool, &mut dry, &mut run, opts, &mut batches).await?;
    collection::<prescriptions::Prescriptions>(pool, &mut dry, &mut run, opts, &mut batches).await?;
    collection::<activity::ActivityLogs>(pool, &mut dry, &mut run, opts, &mut batches).await?;
    run.rejects.flush().context("writing the rejects file")?;

    let mut digest = Sha256::new();
    for c in &run.report.collections {
        digest.update(format!("{}.json {}\n", c.name, if c.file_present { c.sha256.as_str() } else { "absent" }));
    }
    run.report.source_sha256 = hex::encode(digest.finalize());

    let mut own: Option<Transaction<'static, Postgres>> = None;
    let conn: &mut PgConnection = match dry.as_mut() {
        Some(tx) => tx,
        None => own.insert(db::begin(pool, &claims).await.context("database")?),
    };
    run.report.sealed_sample =
        report::verify_samples(conn, &crypto.keyring.snapshot(), &run.sealer.samples).await.context("database")?;
    run.report.orphans = report::orphans(conn, opts.org, SOURCE).await.context("database")?;
    let (expected, actual) = (std::mem::take(&mut run.expected), std::mem::take(&mut run.actual));
    run.report.elapsed_seconds = clock.elapsed().as_secs_f64();
    let written: u64 = run.report.rows_written.values().sum();
    run.report.rows_per_second = written as f64 / run.report.elapsed_seconds.max(1e-9);
    run.report.finish(&expected, &actual);
    match (dry, own) {
        (Some(tx), _) => tx.rollback().await.context("database")?,
        (None, Some(mut tx)) => {
            audit::record(&mut tx, &AuditContext::from_claims(&claims), &import_event(&run.report, opts))
                .await
                .context("audit")?;
            tx.commit().await.context("database")?;
        }
        (None, None) => {}
    }
    Ok(run.report)
}

async fn collection<C: Collection>(
    pool: &PgPool,
    dry: &mut Option<Transaction<'static, Postgres>>,
    run: &mut Run<'_>,
    opts: &Options,
    batches: &mut u64,
) -> anyhow::Result<()> {
    let path = opts.dir.join(format!("{}.json", C::NAME));
    let mut rep = report::CollectionReport { name: C::NAME, ..Default::default() };
    let Some(mut src) = Source::open(&path).with_context(|| format!("cannot read {}", path.display()))? else {
        run.report.collections.push(rep);
        return Ok(());
    };
    rep.file_present = true;
    let mut unknown = Unknown::default();
    let mut progress = progress::Progress::new(C::NAME, src.len, opts.quiet);
    let mut in_collection = 0u64;
    loop {
        let lines = src.next_batch(opts.batch_size).with_context(|| format!("cannot read {}", path.display()))?;
        if lines.is_empty() {
            break;
        }
        rep.read += lines.len() as u64;
        in_collection += 1;
        if dry.is_none() && in_collection.is_power_of_two() {
            refresh_statistics(pool, C::NAME).await;
        }
        let outcome = match dry.as_mut() {
            Some(tx) => {
                sqlx::query("SAVEPOINT import_batch").execute(&mut **tx).await.context("database")?;
                let o = pipeline::batch::<C>(tx, run, lines, &mut unknown).await?;
                sqlx::query("RELEASE SAVEPOINT import_batch").execute(&mut **tx).await.context("database")?;
                o
            }
            None => {
                let mut tx = db::begin(pool, &Claims::system(Some(opts.org))).await.context("database")?;
                let o = pipeline::batch::<C>(&mut tx, run, lines, &mut unknown).await?;
                *batches += 1;
                if opts.crash_before_commit == Some(*batches) {
                    // Simulates `kill -9`: no unwinding, no rollback, the connection just dies.
                    std::process::abort();
                }
                tx.commit().await.context("database")?;
                o
            }
        };
        rep.imported += outcome.imported;
        rep.already_imported += outcome.already;
        rep.rejected += outcome.rejected;
        progress.update(src.bytes_read, rep.read, rep.imported + rep.already_imported, rep.rejected);
    }
    progress.finish(rep.read, rep.imported + rep.already_imported, rep.rejected);
    rep.sha256 = hex::encode(src.finish().with_context(|| format!("cannot read {}", path.display()))?);
    rep.unknown_fields = unknown;
    run.report.collections.push(rep);
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
async fn refresh_statistics(pool: &PgPool, collection: &str) {
    let tables = match collection {
        "users" => "legacy_id_map, users, patients, patient_medical_info, allergies, medications, medical_history",
        "conversations" => "legacy_id_map, users, patients, conversations, messages, symptoms, attachments",
        "prescriptions" => "legacy_id_map, users, patients, prescriptions",
        _ => "legacy_id_map, users, patients, conversations, prescriptions",
    };
    let analyze = async {
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL default_statistics_target = 10").execute(&mut *tx).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {tables}"))).execute(&mut *tx).await?;
        tx.commit().await
    };
    if let Err(e) = analyze.await {
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
        "legacy MongoDB import by operator {}; source sha256 {}; {}; rows written {}; {}",
        opts.operator,
        r.source_sha256,
        counts.join("; "),
        r.rows_written_total,
        if r.balanced { "balanced" } else { "NOT balanced" }
    );
    let outcome = if r.balanced { Outcome::Success } else { Outcome::Error };
    AuditEvent::new(Action::Import, "legacy_import", outcome).reason(reason).in_org(opts.org)
}
