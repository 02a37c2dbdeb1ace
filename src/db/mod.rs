//! PostgreSQL access: finding the database, the pool, migrations + policies, and the request
//! transaction that carries the caller's claims.

pub mod locate;
pub mod migrate;
pub mod tx;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use tx::{ClaimRole, Claims, begin};

/// Leader election for the one-at-a-time jobs (the audit sequencer, the privacy monitor): a
/// dedicated connection that holds session advisory lock `key`, or `None` when another process
/// holds it. The lock lives as long as the connection: a crashed leader's lock is released by
/// PostgreSQL when its connection ends.
pub async fn try_lead(
    opts: &PgConnectOptions,
    application_name: &str,
    key: i64,
) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let mut conn = opts.clone().application_name(application_name).connect().await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut conn).await?;
    if got {
        Ok(Some(conn))
    } else {
        conn.close().await.ok();
        Ok(None)
    }
}

/// A statement with its values bound, not yet run: built apart from running it so that it can
/// go alone or in a pipeline with others (`PgConnection::fetch_pipeline`, vendor/README.md).
pub type BoundQuery = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// SQLSTATEs that say "try again" rather than "this request is wrong": the connection is gone
/// or going (class 08; 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now;
/// 53300 too many connections; 25006 a read-only standby after a fail-over) or the
/// transaction lost a race (40001 serialization failure, 40P01 deadlock).
pub fn is_transient(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "53300" | "25006" | "40001" | "40P01")
}

/// Whether a database error is one a retry may cure ([`is_transient`], pool and I/O errors).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| is_transient(&c)),
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Opens the pool. `sslmode=verify-full` (and `sslrootcert`) in the URL are honoured by
/// sqlx's rustls backend, so production databases get verified TLS from the URL alone.
///
/// No ping before each acquire (sqlx's `test_before_acquire`), and none on release unless
/// something is pending (the vendored sqlx-core, vendor/README.md): each is a round trip per
/// request. A connection going back with a queued ROLLBACK (a transaction dropped without
/// commit) or unread responses (a query cut off mid-way) is still flushed before reuse; a
/// connection that died fails its next query, which that request reports as 503.
pub async fn connect(url: &SecretString, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let opts: PgConnectOptions = url.expose_secret().parse()?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts.application_name("custos"))
        .await
}
