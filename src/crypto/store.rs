//! Loading the data keys from `encryption_keys` at start-up: check the KEK against the stored
//! key check value (a wrong KEK is refused before anything is read or written), unwrap every
//! version, and create version 1 on a fresh database.
//!
//! A running server keeps them in a [`LiveKeyring`], which reloads from the table when asked
//! to open a value under a version it has not loaded (another server — or `custos keys
//! rotate` followed by writes elsewhere — got there first), at most once a second, and
//! periodically (`CUSTOS_KEY_RELOAD_SECS`), so that after a rotation every server moves its
//! new writes to the newest version within one interval.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{BlindIndexKey, CryptoError, Dek, Kek, KeyVersion, Keyring};
use crate::db::{self, Claims};

/// Everything needed to seal, open and blind-index fields.
#[derive(Clone)]
pub struct FieldCrypto {
    pub keyring: Arc<LiveKeyring>,
    pub blind: BlindIndexKey,
}

/// On-demand reloads (an unknown version met while opening) happen at most this often, so a
/// damaged or forged version header cannot turn every read into a key-table query.
const MIN_ON_DEMAND_RELOAD_GAP: Duration = Duration::from_secs(1);

/// The data keys a running process uses: a snapshot of `encryption_keys` that can be
/// replaced while requests use it. Sealing and opening are synchronous and never wait for
/// a reload; a reload builds a new [`Keyring`] and swaps it in.
pub struct LiveKeyring {
    ring: RwLock<Arc<Keyring>>,
    /// Where to reload from; `None` for a one-off snapshot (commands, tests).
    source: Option<(PgPool, Kek)>,
    last_on_demand: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for LiveKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKeyring").field("ring", &*self.snapshot()).finish_non_exhaustive()
    }
}

impl LiveKeyring {
    fn new(ring: Keyring, source: Option<(PgPool, Kek)>) -> Self {
        Self { ring: RwLock::new(Arc::new(ring)), source, last_on_demand: tokio::sync::Mutex::new(None) }
    }

    /// The keys as loaded right now.
    pub fn snapshot(&self) -> Arc<Keyring> {
        // A poisoned lock still holds a complete Arc (the swap is one assignment).
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// See [`Keyring::seal`].
    pub fn seal(&self, table: &str, column: &str, row_id: Uuid, plaintext: &[u8]) -> super::Result<Vec<u8>> {
        self.snapshot().seal(table, column, row_id, plaintext)
    }

    /// See [`Keyring::seal_str`].
    pub fn seal_str(&self, table: &str, column: &str, row_id: Uuid, text: &str) -> super::Result<Vec<u8>> {
        self.snapshot().seal_str(table, column, row_id, text)
    }

    /// See [`Keyring::open`]; `UnknownKeyVersion` means "try [`LiveKeyring::reload_for`]".
    pub fn open(&self, table: &str, column: &str, row_id: Uuid, stored: &[u8]) -> super::Result<Zeroizing<Vec<u8>>> {
        self.snapshot().open(table, column, row_id, stored)
    }

    /// See [`Keyring::open_string`].
    pub fn open_string(
        &self,
        table: &str,
        column: &str,
        row_id: Uuid,
        stored: &[u8],
    ) -> super::Result<Zeroizing<String>> {
        self.snapshot().open_string(table, column, row_id, stored)
    }

    /// [`Self::open`] that, when the value is sealed under a data key version this server
    /// has not loaded (another server rotated and already writes with it), reloads the keys
    /// (rate-limited, [`Self::reload_for`]) and opens once more.
    pub async fn open_fresh(
        &self,
        table: &str,
        column: &str,
        row_id: Uuid,
        stored: &[u8],
    ) -> super::Result<Zeroizing<Vec<u8>>> {
        self.reloading(|k| k.open(table, column, row_id, stored)).await
    }

    /// [`Self::open_string`] with the reload of [`Self::open_fresh`].
    pub async fn open_string_fresh(
        &self,
        table: &str,
        column: &str,
        row_id: Uuid,
        stored: &[u8],
    ) -> super::Result<Zeroizing<String>> {
        self.reloading(|k| k.open_string(table, column, row_id, stored)).await
    }

    async fn reloading<T>(&self, open: impl Fn(&Keyring) -> super::Result<T>) -> super::Result<T> {
        match open(&self.snapshot()) {
            Err(CryptoError::UnknownKeyVersion(v)) => match KeyVersion::try_from(v) {
                Ok(version) if self.reload_for(version).await => open(&self.snapshot()),
                _ => Err(CryptoError::UnknownKeyVersion(v)),
            },
            other => other,
        }
    }

    /// The version new values are sealed with.
    pub fn current_version(&self) -> KeyVersion {
        self.snapshot().current_version()
    }

    /// Reloads every version from `encryption_keys`; returns the current version after it.
    /// A snapshot without a source, or a table that no longer matches the KEK, keeps the
    /// loaded keys (the latter with an error: someone rotated with another KEK).
    pub async fn reload(&self) -> Result<KeyVersion, KeyStoreError> {
        let Some((pool, kek)) = &self.source else { return Ok(self.current_version()) };
        let ring = read(pool, kek).await?;
        let (before, after) = (self.current_version(), ring.current_version());
        if after < before {
            // Never move backwards (a key row cannot disappear; if it did, keep what we have).
            return Ok(before);
        }
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
        if after != before {
            tracing::info!(version = %after, previous = %before, "data keys reloaded: new values are sealed with the newer version");
        }
        Ok(after)
    }

    /// Makes `version` openable if `encryption_keys` holds it: reloads unless it is already
    /// loaded or an on-demand reload ran less than a second ago. Returns whether it is loaded.
    pub async fn reload_for(&self, version: KeyVersion) -> bool {
        if self.snapshot().contains(version) {
            return true;
        }
        let mut last = self.last_on_demand.lock().await;
        // Another request may have reloaded while this one waited for the lock.
        if self.snapshot().contains(version) {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < MIN_ON_DEMAND_RELOAD_GAP) {
            return false;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.reload().await {
            tracing::error!(error = %e, "reloading data keys failed");
        }
        self.snapshot().contains(version)
    }
}

/// Reloads `keyring` every `every` until the keyring is dropped (the server stopped).
pub fn spawn_periodic_reload(keyring: &Arc<LiveKeyring>, every: Duration) {
    let weak: Weak<LiveKeyring> = Arc::downgrade(keyring);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; the keys were just loaded
        loop {
            tick.tick().await;
            let Some(keyring) = weak.upgrade() else { return };
            if let Err(e) = keyring.reload().await {
                tracing::error!(error = %e, "periodic data key reload failed; keeping the loaded keys");
            }
        }
    });
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

/// Loads (or on first use creates) the data keys, as a snapshot that does not reload.
pub async fn load(pool: &PgPool, kek: &Kek) -> Result<FieldCrypto, KeyStoreError> {
    let keyring = load_or_create(pool, kek).await?;
    Ok(FieldCrypto { keyring: Arc::new(LiveKeyring::new(keyring, None)), blind: BlindIndexKey::derive(kek) })
}

/// [`load`] for a server: the keyring can reload from the table (it keeps `kek` for that).
pub async fn load_reloadable(pool: &PgPool, kek: Kek) -> Result<FieldCrypto, KeyStoreError> {
    let keyring = load_or_create(pool, &kek).await?;
    let blind = BlindIndexKey::derive(&kek);
    Ok(FieldCrypto { keyring: Arc::new(LiveKeyring::new(keyring, Some((pool.clone(), kek)))), blind })
}

/// Every stored version, checked against the KEK and unwrapped (no creation).
async fn read(pool: &PgPool, kek: &Kek) -> Result<Keyring, KeyStoreError> {
    let mut tx = db::begin(pool, &Claims::system(None)).await?;
    let rows: Vec<(i32, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT version, wrapped_key, kek_check FROM encryption_keys ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    unwrap_rows(kek, &rows)
}

fn unwrap_rows(kek: &Kek, rows: &[(i32, Vec<u8>, Vec<u8>)]) -> Result<Keyring, KeyStoreError> {
    for (_, _, check) in rows {
        kek.verify_check_value(check).map_err(|_| KeyStoreError::WrongKek)?;
    }
    let mut versioned = Vec::with_capacity(rows.len());
    for (v, wrapped, _) in rows {
        versioned.push((KeyVersion::new(i64::from(*v))?, wrapped.as_slice()));
    }
    Ok(Keyring::from_wrapped(kek, versioned)?)
}

async fn load_or_create(pool: &PgPool, kek: &Kek) -> Result<Keyring, KeyStoreError> {
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
    unwrap_rows(kek, &rows)
}
