//! Loading the data keys from `encryption_keys` at start-up: check the KEK against the stored
//! key check value (a wrong KEK is refused before anything is read or written), unwrap every
//! version, and create version 1 on a fresh database.

use sqlx::PgPool;

use super::{BlindIndexKey, CryptoError, Dek, Kek, KeyVersion, Keyring};
use crate::db::{self, Claims};

/// Everything needed to seal, open and blind-index fields.
pub struct FieldCrypto {
    pub keyring: Keyring,
    pub blind: BlindIndexKey,
}

impl std::fmt::Debug for FieldCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldCrypto([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The configured KEK is not the one the stored data keys were wrapped with.
    #[error(
        "CUSTOS_KEK does not match the key-encryption key this database was set up with \
         (key check value mismatch): refusing to start"
    )]
    WrongKek,
    #[error("data key error: {0}")]
    Crypto(#[from] CryptoError),
    #[error("database error while loading data keys: {0}")]
    Db(#[from] sqlx::Error),
}

/// Arbitrary constant: serialises first-key creation between processes starting together.
const KEY_INIT_LOCK: i64 = 0x0C05_7050_4B45;

/// Loads (or on first use creates) the data keys.
pub async fn load(pool: &PgPool, kek: &Kek) -> Result<FieldCrypto, KeyStoreError> {
    let mut tx = db::begin(pool, &Claims::system(None)).await?;
    let rows: Vec<(i32, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT version, wrapped_key, kek_check FROM encryption_keys ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
    let rows = if rows.is_empty() {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(KEY_INIT_LOCK).execute(&mut *tx).await?;
        let again: Vec<(i32, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT version, wrapped_key, kek_check FROM encryption_keys ORDER BY version")
                .fetch_all(&mut *tx)
                .await?;
        if again.is_empty() {
            let wrapped = kek.wrap_dek(KeyVersion::FIRST, &Dek::generate())?;
            let check = kek.check_value();
            sqlx::query("INSERT INTO encryption_keys (version, wrapped_key, kek_check) VALUES ($1, $2, $3)")
                .bind(KeyVersion::FIRST.as_i32())
                .bind(&wrapped)
                .bind(&check[..])
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = 1, "created the first data encryption key");
            vec![(KeyVersion::FIRST.as_i32(), wrapped, check.to_vec())]
        } else {
            again
        }
    } else {
        rows
    };
    tx.commit().await?;
    for (_, _, check) in &rows {
        kek.verify_check_value(check).map_err(|_| KeyStoreError::WrongKek)?;
    }
    let mut versioned = Vec::with_capacity(rows.len());
    for (v, wrapped, _) in &rows {
        versioned.push((KeyVersion::new(i64::from(*v))?, wrapped.as_slice()));
    }
    let keyring = Keyring::from_wrapped(kek, versioned)?;
    Ok(FieldCrypto { keyring, blind: BlindIndexKey::derive(kek) })
}
