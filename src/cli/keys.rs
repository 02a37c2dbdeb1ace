//! `custos keys rotate` and `custos keys rewrap`.
//!
//! - rotate: a new data key version (wrapped under the KEK, after checking the KEK against
//!   the stored key check value) that new writes use; old versions stay readable.
//! - rewrap: re-encrypts every sealed value (the list in `clinical::sealed`) that is not on
//!   the newest version, in batches of its own transactions — online (row by row, with an
//!   optimistic `WHERE col = old` so a concurrent write is never overwritten), resumable (it
//!   only ever looks at values still on an old version) and idempotent.
//!
//! Both run on the maintenance login and record a `key_management` event in the system
//! ledger: `rotate` as the app role in the maintenance context (`system` claims), `rewrap` as
//! `custos_rewrapper`, which may read and change the sealed columns of every organization and
//! nothing else (policies/80_rewrap.sql).
//! Running servers re-read the keys every `CUSTOS_KEY_RELOAD_SECS` (30 s by default), and at
//! once when they meet a value sealed under a version they have not loaded. Start `rewrap`
//! one reload interval after `rotate`, so that no server still seals new values with the old
//! key; `rewrap` goes round again until a pass finds nothing left to do, in case one did.

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::clinical::sealed::SEALED_COLUMNS;
use crate::crypto::{Dek, Kek, KeyVersion, Keyring};
use crate::db::{self, Claims};

/// Serialises concurrent rotations.
const ROTATE_LOCK: i64 = 0x0C05_7050_4B46;

async fn record(pool: &PgPool, event: AuditEvent) -> anyhow::Result<()> {
    let claims = Claims::system(None);
    let mut tx = db::begin(pool, &claims).await?;
    audit::record(&mut tx, &AuditContext::from_claims(&claims), &event).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates the next data key version; returns it.
pub async fn rotate(pool: &PgPool, kek: &Kek) -> anyhow::Result<KeyVersion> {
    // Loading checks the KEK (and creates version 1 on a fresh database).
    crate::crypto::store::load(pool, kek).await?;
    // As the app role in the maintenance context (the policy on encryption_keys lets only it
    // add keys): the maintenance login holds no privilege of its own.
    let mut tx = db::begin(pool, &Claims::system(None)).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ROTATE_LOCK).execute(&mut *tx).await?;
    let max: i32 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM encryption_keys").fetch_one(&mut *tx).await?;
    let version = KeyVersion::new(i64::from(max))?.next()?;
    let wrapped = kek.wrap_dek(version, &Dek::generate())?;
    sqlx::query("INSERT INTO encryption_keys (version, wrapped_key, kek_check) VALUES ($1, $2, $3)")
        .bind(version.as_i32())
        .bind(&wrapped)
        .bind(&kek.check_value()[..])
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    record(
        pool,
        AuditEvent::new(Action::KeyManagement, "encryption_key", Outcome::Success)
            .resource(version)
            .reason(format!("rotate: data key version {version} created")),
    )
    .await?;
    Ok(version)
}

/// What a rewrap did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RewrapReport {
    pub rewrapped: u64,
    /// Values that failed their integrity check (left untouched, reported).
    pub failed: u64,
    /// Passes over every sealed column (the last one found nothing to rewrap).
    pub passes: u32,
}

/// SQL: the 4-byte big-endian version header of a sealed value, as an integer.
const VERSION_SQL: &str = "('x' || encode(substring({c} from 1 for 4), 'hex'))::bit(32)::int";

/// A transaction as `custos_rewrapper` (see the module comment).
async fn begin_rewrapper(pool: &PgPool) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL ROLE custos_rewrapper").execute(&mut *tx).await?;
    Ok(tx)
}

/// Values of all sealed columns not yet on `current`.
pub async fn pending(pool: &PgPool, current: KeyVersion) -> anyhow::Result<u64> {
    let mut total = 0i64;
    let mut tx = begin_rewrapper(pool).await?;
    for (table, column) in SEALED_COLUMNS {
        let v = VERSION_SQL.replace("{c}", column);
        let sql = format!("SELECT count(*) FROM {table} WHERE {column} IS NOT NULL AND {v} <> $1");
        total +=
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(current.as_i32()).fetch_one(&mut *tx).await?;
    }
    tx.rollback().await?;
    Ok(u64::try_from(total).unwrap_or(0))
}

/// Re-encrypts every sealed value to the newest key version, `batch` rows per transaction.
pub async fn rewrap(pool: &PgPool, kek: &Kek, batch: i64, progress: bool) -> anyhow::Result<RewrapReport> {
    let keyring = crate::crypto::store::load(pool, kek).await?.keyring.snapshot();
    let current = keyring.current_version();
    let total = pending(pool, current).await?;
    let bar = if progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} values rewrapped ({eta} left) {msg}") {
        bar.set_style(style);
    }
    let mut report = RewrapReport::default();
    // Passes until one rewraps nothing: a server that had not reloaded its keys yet may have
    // sealed values under an older version behind the first pass. Values that fail their
    // integrity check stay where they are; `failed` counts them once (the last pass).
    for pass in 1u32.. {
        let mut this = RewrapReport::default();
        if pass > 1 {
            let left = pending(pool, current).await?;
            bar.inc_length(left);
        }
        for (table, column) in SEALED_COLUMNS {
            bar.set_message(format!("{table}.{column}"));
            let mut after = Uuid::nil();
            loop {
                let (n, last) = rewrap_batch(pool, &keyring, table, column, after, batch, &mut this).await?;
                bar.inc(n);
                match last {
                    Some(id) => after = id,
                    None => break,
                }
            }
        }
        report.rewrapped += this.rewrapped;
        report.failed = this.failed;
        report.passes = pass;
        if this.rewrapped == 0 {
            break;
        }
    }
    bar.finish_with_message("done");
    record(
        pool,
        AuditEvent::new(
            Action::KeyManagement,
            "encryption_key",
            if report.failed == 0 { Outcome::Success } else { Outcome::Error },
        )
        .resource(current)
        .reason(format!("rewrap: {} values to version {current}, {} failed", report.rewrapped, report.failed)),
    )
    .await?;
    Ok(report)
}

async fn rewrap_batch(
    pool: &PgPool,
    keyring: &Keyring,
    table: &str,
    column: &str,
    after: Uuid,
    batch: i64,
    report: &mut RewrapReport,
) -> anyhow::Result<(u64, Option<Uuid>)> {
    let mut tx = begin_rewrapper(pool).await?;
    // Lets the messages guard accept this (and only this) re-encryption of an append-only body.
    sqlx::query("SELECT set_config('custos.rewrap', 'on', true)").execute(&mut *tx).await?;
    let v = VERSION_SQL.replace("{c}", column);
    let sql = format!(
        "SELECT id, {column} FROM {table} WHERE id > $1 AND {column} IS NOT NULL AND {v} <> $2 ORDER BY id LIMIT $3 \
         FOR UPDATE SKIP LOCKED"
    );
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(keyring.current_version().as_i32())
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok((0, None));
    };
    let update = format!("UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} = $3");
    let mut n = 0;
    for (id, stored) in &rows {
        match keyring.rewrap(table, column, *id, stored) {
            Ok(Some(new)) => {
                sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                    .bind(&new)
                    .bind(id)
                    .bind(stored)
                    .execute(&mut *tx)
                    .await?;
                report.rewrapped += 1;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(table, column, row = %id, error = %e, "value could not be rewrapped");
                report.failed += 1;
            }
        }
        n += 1;
    }
    tx.commit().await?;
    Ok((n, Some(last)))
}

#[cfg(test)]
mod tests {
    /// policies/80_rewrap.sql grants custos_rewrapper exactly the sealed columns.
    #[test]
    fn rewrapper_grants_cover_every_sealed_column() {
        let sql = include_str!("../../policies/80_rewrap.sql");
        let listed = sql.matches("_enc')").count();
        for (table, column) in crate::clinical::sealed::SEALED_COLUMNS {
            assert!(sql.contains(&format!("('{table}', '{column}')")), "{table}.{column} missing in 80_rewrap.sql");
        }
        assert_eq!(listed, crate::clinical::sealed::SEALED_COLUMNS.len(), "80_rewrap.sql lists other columns");
    }
}
