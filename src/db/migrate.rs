//! Schema migrations (migrations/, embedded by `sqlx::migrate!`) followed by the RLS policies
//! and grants (policies/, embedded by build.rs), which are re-applied on every run.
//!
//! Policies are idempotent SQL (CREATE ... IF NOT EXISTS / DROP POLICY IF EXISTS + CREATE),
//! applied in one transaction so no request ever sees a table between "policy dropped" and
//! "policy created"; an advisory lock serialises servers that start at the same moment.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

include!(concat!(env!("OUT_DIR"), "/policies.rs"));

/// The embedded migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Arbitrary constant: the advisory lock key that serialises policy application.
const POLICY_LOCK: i64 = 0x0C05_7050_1100;

/// Applies pending migrations, then every policy file.
pub async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await?;
    apply_policies(pool).await
}

/// Errors while migrating; the policy file name says where a policy failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("policy file {file} failed: {source}")]
    Policy { file: &'static str, source: sqlx::Error },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// SHA-256 over every policy file's name and contents, in order.
pub fn policy_digest() -> [u8; 32] {
    let mut h = Sha256::new();
    for (name, sql) in POLICY_FILES {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update((sql.len() as u64).to_be_bytes());
        h.update(sql.as_bytes());
    }
    h.finalize().into()
}

async fn apply_policies(pool: &PgPool) -> Result<(), MigrateError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(POLICY_LOCK).execute(&mut *tx).await?;
    // DROP POLICY IF EXISTS is chatty on a fresh database.
    sqlx::query("SET LOCAL client_min_messages = warning").execute(&mut *tx).await?;
    for (file, sql) in POLICY_FILES {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(|source| MigrateError::Policy { file, source })?;
    }
    let digest = policy_digest();
    sqlx::query(
        "INSERT INTO custos.policy_state (singleton, digest) VALUES (true, $1) \
         ON CONFLICT (singleton) DO UPDATE SET digest = EXCLUDED.digest, applied_at = now() \
         WHERE custos.policy_state.digest IS DISTINCT FROM EXCLUDED.digest",
    )
    .bind(&digest[..])
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What /readyz reports about the schema.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SchemaStatus {
    pub migrations_pending: usize,
    pub policies_current: bool,
}

impl SchemaStatus {
    pub fn ready(&self) -> bool {
        self.migrations_pending == 0 && self.policies_current
    }
}

/// Compares the database with the embedded migrations and policies.
pub async fn status(pool: &PgPool) -> Result<SchemaStatus, sqlx::Error> {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
        .or_else(|e| match &e {
            // No migrations table yet: nothing applied.
            sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => Ok(Vec::new()),
            _ => Err(e),
        })?;
    let pending = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .filter(|m| applied.binary_search(&m.version).is_err())
        .count();
    let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT digest FROM custos.policy_state")
        .fetch_optional(pool)
        .await
        .or_else(|e| match &e {
            sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("42P01") | Some("3F000")) => Ok(None),
            _ => Err(e),
        })?;
    Ok(SchemaStatus { migrations_pending: pending, policies_current: stored.as_deref() == Some(&policy_digest()[..]) })
}
