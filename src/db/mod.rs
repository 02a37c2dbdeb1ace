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

/// A statement with its values bound, not yet run: built apart from running it so that it can
/// go alone or in a pipeline with others (`PgConnection::fetch_pipeline`, vendor/README.md).
pub type BoundQuery = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

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
