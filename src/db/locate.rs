//! Finding a database when `DATABASE_URL` is not set (development only).
//!
//! In order: a local PostgreSQL reachable without a password (TCP 127.0.0.1:5432, then the
//! usual Unix socket), creating the `custos` database if missing; otherwise a private cluster
//! started from the system's PostgreSQL binaries under `<data_dir>/pg`. If neither works the
//! error says exactly what to install. Which one was used is logged.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use secrecy::SecretString;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// The database the development server uses.
pub const DEFAULT_DB: &str = "custos";
/// Port of the private cluster (chosen away from 5432 so it never shadows a system server).
pub const PRIVATE_PORT: u16 = 54329;

/// How the database was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Explicit,
    LocalServer,
    PrivateCluster,
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// Nothing reachable and nothing to start: the operator must install PostgreSQL.
    #[error(
        "no PostgreSQL server is reachable at 127.0.0.1:5432 or /var/run/postgresql without a password, \
         and no PostgreSQL server binaries (initdb, pg_ctl) were found to start a private one: \
         install PostgreSQL 14 or newer (Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql`) \
         or set DATABASE_URL"
    )]
    NothingAvailable,
    /// The private cluster could not be initialised or started.
    #[error("could not start a private PostgreSQL cluster in {dir}: {problem}")]
    PrivateCluster { dir: String, problem: String },
    #[error("database error while preparing the local database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Resolves the database URL to use.
pub async fn resolve(explicit: Option<&SecretString>, data_dir: &Path) -> Result<(SecretString, Source), LocateError> {
    if let Some(url) = explicit {
        return Ok((url.clone(), Source::Explicit));
    }
    let candidates = [
        PgConnectOptions::new().host("127.0.0.1").port(5432).username("postgres"),
        PgConnectOptions::new().socket("/var/run/postgresql").username("postgres"),
    ];
    for opts in candidates {
        if let Some(url) = try_server(opts).await? {
            tracing::info!(source = "local-server", "using the local PostgreSQL server, database `custos`");
            return Ok((url, Source::LocalServer));
        }
    }
    let url = start_private_cluster(&data_dir.join("pg")).await?;
    tracing::info!(source = "private-cluster", dir = %data_dir.join("pg").display(), port = PRIVATE_PORT,
        "using a private PostgreSQL cluster started from the system binaries");
    Ok((url, Source::PrivateCluster))
}

/// Connects to the server's `postgres` database; creates `custos` if needed; returns its URL.
async fn try_server(opts: PgConnectOptions) -> Result<Option<SecretString>, LocateError> {
    let admin = opts.clone().database("postgres");
    let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(3), PgConnection::connect_with(&admin)).await
    else {
        return Ok(None);
    };
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(DEFAULT_DB)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        // CREATE DATABASE cannot take a bind parameter; the name is a literal.
        match sqlx::query("CREATE DATABASE \"custos\"").execute(&mut conn).await {
            Ok(_) => tracing::info!("created database `custos`"),
            // Another process created it between our check and our CREATE.
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    let _ = conn.close().await;
    let url = match opts.get_socket() {
        Some(sock) => format!("postgres://postgres@/{DEFAULT_DB}?host={}", sock.display()),
        None => format!("postgres://postgres@{}:{}/{DEFAULT_DB}", opts.get_host(), opts.get_port()),
    };
    Ok(Some(SecretString::from(url)))
}

/// Starts (initialising on first use) the private cluster under `dir`; returns its URL.
pub async fn start_private_cluster(dir: &Path) -> Result<SecretString, LocateError> {
    let url = SecretString::from(format!("postgres://postgres@127.0.0.1:{PRIVATE_PORT}/{DEFAULT_DB}"));
    let opts = PgConnectOptions::new().host("127.0.0.1").port(PRIVATE_PORT).username("postgres");
    if let Some(url) = try_server(opts.clone()).await? {
        return Ok(url); // already running from an earlier start
    }
    let bin = find_pg_bindir().ok_or(LocateError::NothingAvailable)?;
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let fail = |problem: String| LocateError::PrivateCluster { dir: dir.display().to_string(), problem };
    // PostgreSQL refuses to run as root; use the `postgres` system account then.
    let as_root = is_root();
    if !dir.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
        if as_root {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir)).map_err(fail)?;
        }
        let mut initdb = pg_command(&bin.join("initdb"), as_root);
        initdb.arg("-D").arg(&dir).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions"]);
        run(&mut initdb).map_err(fail)?;
    }
    let mut start = pg_command(&bin.join("pg_ctl"), as_root);
    start
        .arg("-D")
        .arg(&dir)
        .arg("-l")
        .arg(dir.join("server.log"))
        .arg("-w")
        .arg("-o")
        .arg(format!("-p {PRIVATE_PORT} -c listen_addresses=127.0.0.1 -k {}", dir.display()));
    start.arg("start");
    run(&mut start).map_err(fail)?;
    match try_server(opts).await? {
        Some(_) => Ok(url),
        None => Err(fail("the server started but does not accept connections; see server.log".into())),
    }
}

/// Stops the private cluster under `dir` (fast shutdown), if it runs.
pub fn stop_private_cluster(dir: &Path) -> Result<(), String> {
    let bin = find_pg_bindir().ok_or("no PostgreSQL binaries found")?;
    let mut stop = pg_command(&bin.join("pg_ctl"), is_root());
    stop.arg("-D").arg(dir).args(["-m", "fast", "-w", "stop"]);
    run(&mut stop)
}

fn pg_command(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{}: {e}", cmd.get_program().to_string_lossy()))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!("{} failed: {}", cmd.get_program().to_string_lossy(), stderr.trim()))
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

/// `pg_config --bindir`, else the newest /usr/lib/postgresql/<n>/bin, else initdb on PATH.
fn find_pg_bindir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| has(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(PathBuf::from).find(|d| has(d))
}
