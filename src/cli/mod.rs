//! The command line. Each subcommand is a thin wrapper over library functions.

pub mod bootstrap;
pub mod demo;
pub mod healthcheck;
pub mod import;
pub mod keys;
pub mod ledger;
pub mod logins;
pub mod monitor;
pub mod witness;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, Settings};
use crate::crypto::store::KeyStoreError;
use crate::keys::{KeyError, RootKeys};
use crate::startup::StartupError;

#[derive(Debug, Parser)]
#[command(name = "custos", version, about = "HIPAA-focused audit and compliance backend")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies migrations and policies first, unless --no-migrate).
    Serve {
        /// Never change the schema: check it is current and refuse to start otherwise (for
        /// the web login, which may not migrate).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply migrations, then every policy file; running it twice changes nothing.
    Migrate,
    /// Data key management: `rotate` (new version for new writes), `rewrap` (re-encrypt old values).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Run the audit sequencer on its own (leader election by advisory lock).
    Sequencer {
        /// Integrate everything waiting, sign checkpoints, and exit.
        #[arg(long)]
        once: bool,
        /// Never change the schema: check it is current and refuse to start otherwise (for
        /// the ledger login, which may not migrate).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Verify every ledger in the database, or (--bundle) an export offline. Exit 1 on failure.
    Verify {
        /// Verify this export bundle offline (no database needed).
        #[arg(long)]
        bundle: Option<std::path::PathBuf>,
        /// A trusted verifier key (`name+keyid+base64`) or a file of them; repeatable.
        #[arg(long)]
        key: Vec<String>,
        /// A signed checkpoint kept earlier; the ledger must be consistent with it. Repeatable.
        #[arg(long)]
        checkpoint: Vec<std::path::PathBuf>,
        /// Verify these `c2sp.org/tlog-proof@v1` files offline (needs --key). Repeatable.
        #[arg(long)]
        proof: Vec<std::path::PathBuf>,
        /// A witness's cosigner key (vkey `name+keyid+base64(0x04 ‖ key)`); repeatable.
        #[arg(long)]
        witness: Vec<String>,
        /// Fail unless every ledger's latest checkpoint carries at least this many valid
        /// cosignatures by --witness keys. Witness fork alerts always fail verification.
        #[arg(long, default_value_t = 0)]
        min_cosignatures: usize,
    },
    /// Write a ledger's self-contained, offline-verifiable bundle.
    Export {
        /// The organization id, or `system`.
        #[arg(long)]
        ledger: String,
        /// Output file.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Create an organization and its first admin (prints a one-time password once).
    Bootstrap {
        /// The organization's name.
        #[arg(long)]
        org: String,
        /// The first admin's email address.
        #[arg(long)]
        admin_email: String,
    },
    /// Import legacy data into an organization (`import mongo --dir … --org …`), or prove an
    /// import complete (`import verify --dir … --org …`).
    Import {
        #[command(subcommand)]
        source: import::ImportSource,
    },
    /// Run the privacy monitor (leader election by advisory lock; docs/privacy-monitoring.md).
    Monitor {
        /// Analyze every ledger to its current end and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between passes.
        #[arg(long, default_value_t = 10)]
        interval: u64,
    },
    /// Demo data (`demo generate`: a synthetic legacy export; `demo simulate`: access traffic
    /// with labelled snooping cases).
    Demo {
        #[command(subcommand)]
        command: demo::DemoCommand,
    },
    /// Ask a running server's /readyz (for container and service-manager health checks).
    Healthcheck {
        /// `http://host:port/path`; default: CUSTOS_BIND's port on loopback, `/readyz`.
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
        timeout: u64,
    },
    /// The production database logins, one per job (run once, by a database administrator).
    Logins {
        #[command(subcommand)]
        action: LoginsCommand,
    },
    /// Run a C2SP tlog-witness that cosigns the checkpoints of the ledgers it is given
    /// (`witness keygen --name NAME` makes its key).
    Witness(witness::WitnessArgs),
}

#[derive(Debug, Subcommand)]
pub enum LoginsCommand {
    /// Create (or bring up to date) the logins on DATABASE_URL's server; with --database,
    /// hand that database to the owner login.
    Create {
        /// Login name prefix: `<prefix>owner`, `<prefix>web`, `<prefix>ledger`, `<prefix>maint`, `<prefix>verify`.
        #[arg(long, default_value = "custos_")]
        prefix: String,
        /// The (existing) database the owner login takes over.
        #[arg(long)]
        database: Option<String>,
        /// Set a new random password on each login and print it once on stdout.
        #[arg(long)]
        generate_passwords: bool,
    },
    /// Print the SQL `create` runs (for review, or to run with psql).
    Sql {
        #[arg(long, default_value = "custos_")]
        prefix: String,
        #[arg(long)]
        database: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new data key version; new values are sealed with it once servers reload
    /// their keys (every CUSTOS_KEY_RELOAD_SECS, 30 s by default).
    Rotate,
    /// Re-encrypt every sealed value to the newest version (online, resumable). Start it one
    /// key reload interval after `rotate`; it repeats until a pass finds nothing left.
    Rewrap {
        /// Rows per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
    },
}

/// A command's failure, classified for the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or configuration: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything that went wrong while running: exit 1.
    #[error("{0:#}")]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Runtime(_) => 1,
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        Self::Usage(e.to_string())
    }
}

impl From<KeyError> for CliError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::DevFile { .. } => Self::Runtime(e.into()),
            _ => Self::Usage(e.to_string()),
        }
    }
}

impl From<crate::db::locate::LocateError> for CliError {
    fn from(e: crate::db::locate::LocateError) -> Self {
        match e {
            crate::db::locate::LocateError::NothingAvailable => Self::Usage(e.to_string()),
            _ => Self::Runtime(e.into()),
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    crate::telemetry::init(&settings.log_filter);
    match cli.command {
        Command::Serve { no_migrate } => serve(settings, no_migrate).await,
        Command::Verify { bundle, key, checkpoint, proof, witness, min_cosignatures } => {
            let cosigned = ledger::Cosigned::parse(&witness, min_cosignatures)?;
            if !proof.is_empty() {
                return ledger::verify_proofs(&proof, &key, &cosigned);
            }
            ledger::verify(&settings, bundle, &key, &checkpoint, &cosigned).await
        }
        Command::Witness(args) => witness::run(args).await,
        Command::Export { ledger: id, out } => ledger::export(&settings, &id, &out).await,
        Command::Sequencer { once, no_migrate } => ledger::sequencer(&settings, once, no_migrate).await,
        Command::Migrate => {
            let pool = pool(&settings).await?;
            crate::db::migrate::run(&pool).await.map_err(anyhow::Error::from)?;
            println!("migrations and policies applied");
            Ok(())
        }
        Command::Keys { action } => {
            let root = RootKeys::load(&settings)?;
            let kek = crate::crypto::Kek::from_bytes(*root.kek.expose());
            let pool = checked_pool(&settings).await?;
            match action {
                KeysCommand::Rotate => {
                    let v = keys::rotate(&pool, &kek).await?;
                    println!(
                        "data key version {v} created; running servers seal with it after their next key reload \
                         (CUSTOS_KEY_RELOAD_SECS, default 30 s): run `custos keys rewrap` after that"
                    );
                }
                KeysCommand::Rewrap { batch_size } => {
                    let r = keys::rewrap(&pool, &kek, batch_size, true).await?;
                    println!("rewrapped {} values in {} passes, {} failed", r.rewrapped, r.passes, r.failed);
                    if r.failed > 0 {
                        return Err(CliError::Runtime(anyhow::anyhow!(
                            "{} values failed their integrity check",
                            r.failed
                        )));
                    }
                }
            }
            Ok(())
        }
        Command::Bootstrap { org, admin_email } => {
            let keys = RootKeys::load(&settings)?;
            let pool = checked_pool(&settings).await?;
            let out = bootstrap::run(&pool, &keys, &org, &admin_email).await?;
            println!("organization: {} ({})", org.trim(), out.org_id);
            println!("admin:        {} ({})", out.email, out.admin_id);
            println!(
                "one-time password (shown once; must be changed at first login): {}",
                bootstrap::reveal(&out.one_time_password)
            );
            Ok(())
        }
        Command::Import { source } => import::dispatch(&settings, source).await,
        Command::Demo { command: demo::DemoCommand::Generate(args) } => demo::run(args),
        Command::Healthcheck { url, timeout } => {
            let (authority, path) = healthcheck::target(url.as_deref(), settings.bind)?;
            healthcheck::run(&authority, &path, std::time::Duration::from_secs(timeout)).await
        }
        Command::Logins { action: LoginsCommand::Sql { prefix, database } } => {
            logins::print_sql(&prefix, database.as_deref())
        }
        Command::Logins { action: LoginsCommand::Create { prefix, database, generate_passwords } } => {
            let pool = pool(&settings).await?;
            logins::create(&pool, &prefix, database.as_deref(), generate_passwords).await
        }
        Command::Demo { command: demo::DemoCommand::Simulate(args) } => monitor::simulate(&settings, args).await,
        Command::Monitor { once, interval } => monitor::monitor(&settings, once, interval).await,
    }
}

/// [`pool`], then the schema check every command but `migrate` makes: a database behind this
/// build is refused with a message saying to run `custos migrate` (exit 1).
pub async fn checked_pool(settings: &Settings) -> Result<sqlx::PgPool, CliError> {
    let pool = pool(settings).await?;
    crate::db::migrate::require_current(&pool).await.map_err(anyhow::Error::from)?;
    Ok(pool)
}

/// The metrics listener (`CUSTOS_METRICS_BIND`), if configured, and the tenant-label choice.
pub fn start_metrics(settings: &Settings, pool: Option<sqlx::PgPool>) -> Result<(), CliError> {
    crate::metrics::configure(settings.metrics.tenant_labels);
    if let Some(bind) = settings.metrics.bind {
        let addr = crate::metrics::serve(bind, pool).map_err(|e| {
            CliError::Runtime(e.context(format!("cannot serve metrics on {bind} (CUSTOS_METRICS_BIND)")))
        })?;
        tracing::info!(address = %addr, "metrics listening");
    }
    Ok(())
}

/// Whether the login may act as the sequencer (`SET ROLE custos_sequencer`).
async fn may_sequence(pool: &sqlx::PgPool) -> bool {
    sqlx::query_scalar("SELECT pg_has_role('custos_sequencer', 'MEMBER')").fetch_one(pool).await.unwrap_or(false)
}

/// Finds the database (explicit URL, local server, or private cluster) and opens the pool.
pub async fn pool(settings: &Settings) -> Result<sqlx::PgPool, CliError> {
    let (url, _source) = crate::db::locate::resolve(settings.database_url.as_ref(), &settings.data_dir).await?;
    crate::db::connect(&url, settings.db_max_connections)
        .await
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("cannot connect to the database: {e}")))
}

async fn serve(mut settings: Settings, no_migrate: bool) -> Result<(), CliError> {
    let keys = RootKeys::load(&settings)?;
    let pool = if no_migrate {
        checked_pool(&settings).await?
    } else {
        let pool = pool(&settings).await?;
        crate::db::migrate::run_startup(&pool).await.map_err(anyhow::Error::from)?;
        tracing::info!("migrations and policies applied");
        pool
    };
    if settings.ledger.sequencer_in_server && !may_sequence(&pool).await {
        // The web login of a split installation: the sequencer runs as its own login.
        tracing::warn!(
            "this login is not a member of custos_sequencer: no sequencer in this server \
             (run `custos sequencer` with the ledger login, or set CUSTOS_SEQUENCER=off)"
        );
        settings.ledger.sequencer_in_server = false;
    }
    start_metrics(&settings, Some(pool.clone()))?;
    let app = crate::startup::Application::build(settings.clone(), pool.clone(), keys).await.map_err(|e| match e {
        // A wrong KEK is a configuration error: refuse to start, say which variable.
        StartupError::Keys(KeyStoreError::WrongKek) | StartupError::Jwt(_) => CliError::Usage(e.to_string()),
        StartupError::Keys(e) => CliError::Runtime(anyhow::Error::from(e).context("loading data keys")),
        StartupError::Server(e) => CliError::Runtime(e.context(format!("cannot serve on {}", settings.bind))),
    })?;
    tracing::info!(address = %settings.bind, port = app.port(), tls = settings.tls_cert.is_some(), "listening");
    app.run_until_stopped().await.map_err(anyhow::Error::from)?;
    pool.close().await;
    tracing::info!("shut down cleanly");
    Ok(())
}
