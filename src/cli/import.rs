//! `custos import mongo`: resolve the organization, load the field keys, run the import,
//! print the report (text or `--json`); exit 0 only when the report balances.

use std::path::PathBuf;

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use super::CliError;
use crate::crypto::Kek;
use crate::db::{self, Claims};
use crate::import::{self, Options};
use crate::keys::RootKeys;

#[derive(Debug, clap::Subcommand)]
pub enum ImportSource {
    /// A `mongoexport` directory: users.json, conversations.json, prescriptions.json,
    /// activity_logs.json (one Extended JSON document per line).
    Mongo(MongoArgs),
    /// Re-read a `mongoexport` directory and compare every imported document, field by field,
    /// with the database (sealed values opened); exit 1 on any mismatch.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Directory holding the exported collection files (as given to `import mongo`).
    #[arg(long)]
    pub dir: PathBuf,
    /// The organization imported into: its id or its name.
    #[arg(long)]
    pub org: String,
    /// Documents read per batch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `custos import …`: connects (naming host and port when the server cannot be
/// reached), applies migrations, then imports or verifies.
pub async fn dispatch(settings: &crate::config::Settings, source: ImportSource) -> Result<(), CliError> {
    let keys = RootKeys::load(settings)?;
    // A server that is down is named by host and port with its cause, not a pool time-out.
    if let Some(url) = settings.database_url.as_ref() {
        use secrecy::ExposeSecret as _;
        use sqlx::{ConnectOptions as _, Connection as _};
        let opts: sqlx::postgres::PgConnectOptions =
            url.expose_secret().parse().map_err(|_| CliError::Usage("DATABASE_URL: not a PostgreSQL URL".into()))?;
        let endpoint = format!("{}:{}", opts.get_host(), opts.get_port());
        match opts.connect().await {
            Ok(conn) => conn.close().await.map_err(|e| CliError::Runtime(import::db_error(&endpoint, e)))?,
            Err(sqlx::Error::Io(io)) => {
                return Err(CliError::Runtime(anyhow::anyhow!("cannot connect to PostgreSQL at {endpoint}: {io}")));
            }
            Err(e) => return Err(CliError::Runtime(import::db_error(&endpoint, e))),
        }
    }
    // Only `custos migrate` changes the schema; the import refuses a stale one.
    let pool = super::checked_pool(settings).await?;
    match source {
        ImportSource::Mongo(args) => run(&pool, &keys, args).await,
        ImportSource::Verify(args) => verify(&pool, &keys, args).await,
    }
}

pub async fn verify(pool: &PgPool, keys: &RootKeys, args: VerifyArgs) -> Result<(), CliError> {
    let (org, crypto) = prepare(pool, keys, &args.dir, &args.org).await?;
    let opts = import::verify::VerifyOptions {
        dir: args.dir,
        org,
        batch_size: args.batch_size as usize,
        batch_bytes: import::DEFAULT_BATCH_BYTES,
        operator: operator(),
    };
    let report = import::verify::verify(pool, &crypto, &opts).await?;
    print_report(&report, args.json, || report.render())?;
    if report.ok {
        Ok(())
    } else {
        Err(CliError::Runtime(anyhow::anyhow!("{} fields differ from the source (see above)", report.mismatch_total)))
    }
}

#[derive(Debug, clap::Args)]
pub struct MongoArgs {
    /// Directory holding the exported collection files.
    #[arg(long)]
    pub dir: PathBuf,
    /// The target organization: its id or its name.
    #[arg(long)]
    pub org: String,
    /// Parse, validate and report without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Documents per batch (one transaction each).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// A batch also closes once it holds this many MiB of source text (memory follows it).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch_mib: u32,
    /// Where rejected documents go (NDJSON, mode 0600) [default: DIR/import-rejects.ndjson].
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Testing only: abort the process just before committing this batch (like kill -9).
    #[arg(long, hide = true)]
    pub crash_before_commit: Option<u64>,
}

pub async fn run(pool: &PgPool, keys: &RootKeys, args: MongoArgs) -> Result<(), CliError> {
    let (org, crypto) = prepare(pool, keys, &args.dir, &args.org).await?;
    let opts = Options {
        rejects: args.rejects.clone().unwrap_or_else(|| args.dir.join("import-rejects.ndjson")),
        dir: args.dir,
        org,
        dry_run: args.dry_run,
        batch_size: args.batch_size as usize,
        batch_bytes: args.batch_mib as usize * 1024 * 1024,
        quiet: false,
        operator: operator(),
        crash_before_commit: args.crash_before_commit,
        interrupt_before_commit: None,
    };
    let report = import::run(pool, &crypto, &opts).await?;
    print_report(&report, args.json, || report.render())?;
    if report.balanced {
        Ok(())
    } else {
        Err(CliError::Runtime(anyhow::anyhow!("the import report does not balance (see above)")))
    }
}

/// Checks `--dir`, resolves `--org` and loads the field keys.
async fn prepare(
    pool: &PgPool,
    keys: &RootKeys,
    dir: &std::path::Path,
    org: &str,
) -> Result<(Uuid, crate::crypto::store::FieldCrypto), CliError> {
    if !dir.is_dir() {
        return Err(CliError::Usage(format!("--dir {}: not a directory", dir.display())));
    }
    let org = resolve_org(pool, org).await?;
    let kek = Kek::from_bytes(*keys.kek.expose());
    let crypto = crate::crypto::store::load(pool, &kek).await.map_err(anyhow::Error::from)?;
    Ok((org, crypto))
}

/// A report on stdout: JSON with `--json`, else its text.
fn print_report(report: &impl serde::Serialize, json: bool, text: impl FnOnce() -> String) -> Result<(), CliError> {
    if json {
        println!("{}", serde_json::to_string_pretty(report).context("report")?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

/// The organization by id, or by name (case-insensitive).
async fn resolve_org(pool: &PgPool, org: &str) -> Result<Uuid, CliError> {
    // Organizations are invisible without claims; a narrow definer function resolves the name.
    let mut tx = db::begin(pool, &Claims::system(None)).await.context("database")?;
    let found: Option<Uuid> = sqlx::query_scalar("SELECT custos.organization_id($1)")
        .bind(org)
        .fetch_one(&mut *tx)
        .await
        .context("database")?;
    tx.commit().await.context("database")?;
    found.ok_or_else(|| CliError::Usage("--org: no such organization (create it with `custos bootstrap`)".into()))
}

/// The OS account running the command, as recorded in the audit event.
fn operator() -> String {
    let name = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { name } else { "unknown".into() }
}
