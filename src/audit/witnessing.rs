//! Getting checkpoints cosigned (c2sp.org/tlog-witness, client side). For every configured
//! witness (`CUSTOS_WITNESSES`: URL and vkey) and every ledger whose latest checkpoint it has
//! not cosigned yet, a pass sends `add-checkpoint` with the consistency proof from the size
//! the witness last cosigned, checks the returned line against the witness's key and stores
//! it in `audit_cosignatures`; the checkpoint endpoints then serve the note with it.
//!
//! - 409: the witness knows another size; the pass learns it from the body and retries once.
//! - 422 (and 409 with a size larger than ours): the witness holds a validly signed history
//!   this database is not consistent with — a fork or a rewritten ledger. Stored in
//!   `audit_witness_alerts`, logged, counted ([`FORK_ALERTS`]); `custos verify` fails on it.
//! - Anything else (witness down, 5xx, timeout): logged and counted, tried again on a later
//!   pass with a growing back-off. Runs on its own connection and task while this process
//!   leads the sequencer, so a slow witness never holds up the ledger.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::checkpoint::SignedNote;
use super::cosignature::{CosignatureVerifier, signature_line};
use super::proofs;
use super::witness::AddCheckpoint;

pub use crate::metrics::{COSIGNATURES, FORK_ALERTS, WITNESS_FAILURES};

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One configured witness.
#[derive(Debug, Clone)]
pub struct WitnessTarget {
    /// Submission prefix; `add-checkpoint` is appended.
    pub url: String,
    pub key: CosignatureVerifier,
}

/// Parses `CUSTOS_WITNESSES` entries (`<url> <vkey>`).
pub fn parse_targets(entries: &[(String, String)]) -> Result<Vec<WitnessTarget>, String> {
    entries
        .iter()
        .map(|(url, vkey)| {
            let key = CosignatureVerifier::parse(vkey).map_err(|e| format!("CUSTOS_WITNESSES: {url}: {e}"))?;
            Ok(WitnessTarget { url: url.trim_end_matches('/').to_owned(), key })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum WitnessingError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Proof(#[from] proofs::ProofError),
}

/// What one submission came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Cosigned,
    /// The witness refused in a way that shows a fork (status, detail).
    Fork(u16, String),
    /// Not reachable or not answering sensibly; try later.
    Failed(String),
}

/// The witness client: remembers each witness's last cosigned size per ledger and when to
/// try a failing witness again.
pub struct Witnessing {
    targets: Vec<WitnessTarget>,
    http: reqwest::Client,
    known: HashMap<(usize, Uuid), u64>,
    retry: HashMap<(usize, Uuid), (Instant, Duration)>,
}

impl Witnessing {
    pub fn new(targets: Vec<WitnessTarget>) -> Self {
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
        Self { targets, http, known: HashMap::new(), retry: HashMap::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Submits every ledger's latest checkpoint to every witness that has not cosigned it.
    /// `force` ignores back-off. `conn` must not be in a transaction.
    pub async fn run_pass(
        &mut self,
        conn: &mut PgConnection,
        force: bool,
    ) -> Result<Vec<(Uuid, String, Outcome)>, WitnessingError> {
        let mut results = Vec::new();
        for w in 0..self.targets.len() {
            let vkey = self.targets[w].key.encode();
            let mut tx = conn.begin().await?;
            sqlx::query("SET LOCAL ROLE custos_sequencer").execute(&mut *tx).await?;
            let todo: Vec<(Uuid, i64, String)> = sqlx::query_as(
                "SELECT c.ledger_id, c.tree_size, c.signed_note FROM ( \
                   SELECT DISTINCT ON (ledger_id) ledger_id, tree_size, signed_note FROM audit_checkpoints \
                   ORDER BY ledger_id, tree_size DESC) c \
                 WHERE NOT EXISTS (SELECT 1 FROM audit_cosignatures s WHERE s.ledger_id = c.ledger_id \
                   AND s.tree_size = c.tree_size AND s.witness = $1)",
            )
            .bind(&vkey)
            .fetch_all(&mut *tx)
            .await?;
            for (ledger, size, note) in todo {
                let now = Instant::now();
                if !force && self.retry.get(&(w, ledger)).is_some_and(|(at, _)| *at > now) {
                    continue;
                }
                let outcome = self.submit(&mut tx, w, ledger, size as u64, &note).await?;
                match &outcome {
                    Outcome::Cosigned => {
                        self.retry.remove(&(w, ledger));
                        metrics::counter!(COSIGNATURES).increment(1);
                    }
                    Outcome::Fork(status, detail) => {
                        metrics::counter!(FORK_ALERTS).increment(1);
                        tracing::error!(ledger = %ledger, size, witness = %self.targets[w].key.name(), status,
                            detail = %detail, "witness refused a checkpoint as inconsistent: possible fork or rewritten ledger");
                        sqlx::query(
                            "INSERT INTO audit_witness_alerts (ledger_id, tree_size, witness, http_status, detail) \
                             VALUES ($1, $2, $3, $4, left($5, 2048))",
                        )
                        .bind(ledger)
                        .bind(size)
                        .bind(&vkey)
                        .bind(i32::from(*status))
                        .bind(detail)
                        .execute(&mut *tx)
                        .await?;
                        self.back_off(w, ledger, now);
                    }
                    Outcome::Failed(why) => {
                        metrics::counter!(WITNESS_FAILURES).increment(1);
                        tracing::warn!(ledger = %ledger, witness = %self.targets[w].key.name(), error = %why,
                            "witness did not cosign; will retry");
                        self.back_off(w, ledger, now);
                    }
                }
                results.push((ledger, self.targets[w].key.name().to_owned(), outcome));
            }
            tx.commit().await?;
        }
        Ok(results)
    }

    fn back_off(&mut self, w: usize, ledger: Uuid, now: Instant) {
        let next = self.retry.get(&(w, ledger)).map_or(Duration::from_secs(1), |(_, d)| (*d * 2).min(MAX_BACKOFF));
        self.retry.insert((w, ledger), (now + next, next));
    }

    async fn submit(
        &mut self,
        conn: &mut PgConnection,
        w: usize,
        ledger: Uuid,
        size: u64,
        note: &str,
    ) -> Result<Outcome, WitnessingError> {
        let mut old = match self.known.get(&(w, ledger)) {
            Some(s) => *s,
            None => {
                let s: Option<i64> = sqlx::query_scalar(
                    "SELECT max(tree_size) FROM audit_cosignatures WHERE ledger_id = $1 AND witness = $2",
                )
                .bind(ledger)
                .bind(self.targets[w].key.encode())
                .fetch_one(&mut *conn)
                .await?;
                s.unwrap_or(0) as u64
            }
        };
        // At most one retry after a 409 that told us the witness's size.
        for _ in 0..2 {
            if old > size {
                return Ok(Outcome::Fork(409, format!("witness has cosigned size {old}, larger than ours ({size})")));
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                proofs::consistency(conn, ledger, old, size).await?.0
            };
            let body = AddCheckpoint { old_size: old, proof, checkpoint: note.to_owned() }.encode();
            let url = format!("{}/add-checkpoint", self.targets[w].url);
            let resp = match self.http.post(&url).body(body).send().await {
                Ok(r) => r,
                Err(e) => return Ok(Outcome::Failed(e.without_url().to_string())),
            };
            let status = resp.status().as_u16();
            let text = match resp.text().await {
                Ok(t) => t,
                Err(e) => return Ok(Outcome::Failed(e.without_url().to_string())),
            };
            match status {
                200 => return Ok(self.store(conn, w, ledger, size, note, &text).await?),
                409 => match text.trim_end_matches('\n').parse::<u64>() {
                    Ok(s) => {
                        self.known.insert((w, ledger), s);
                        old = s;
                    }
                    Err(_) => return Ok(Outcome::Failed("409 without a size".into())),
                },
                422 => return Ok(Outcome::Fork(422, text.chars().take(512).collect())),
                other => return Ok(Outcome::Failed(format!("HTTP {other}"))),
            }
        }
        Ok(Outcome::Failed("size changed twice".into()))
    }

    /// Keeps the witness's line if it is a valid cosignature over this checkpoint.
    async fn store(
        &mut self,
        conn: &mut PgConnection,
        w: usize,
        ledger: Uuid,
        size: u64,
        note: &str,
        answer: &str,
    ) -> Result<Outcome, sqlx::Error> {
        let key = &self.targets[w].key;
        let Ok(parsed) = SignedNote::parse(format!("{note}{answer}").as_bytes()) else {
            return Ok(Outcome::Failed("answer is not a list of signature lines".into()));
        };
        let Some(sig) = parsed.signatures.iter().find(|s| key.verify(&parsed.text, s).is_some()) else {
            return Ok(Outcome::Failed("no valid cosignature by the configured key".into()));
        };
        sqlx::query(
            "INSERT INTO audit_cosignatures (ledger_id, tree_size, witness, signature_line) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(ledger)
        .bind(size as i64)
        .bind(key.encode())
        .bind(signature_line(sig))
        .execute(&mut *conn)
        .await?;
        self.known.insert((w, ledger), size);
        Ok(Outcome::Cosigned)
    }
}

/// Runs passes every `every` on a connection of its own, until aborted (the sequencer leader
/// spawns it and aborts it when it stops leading).
pub async fn run(opts: PgConnectOptions, mut witnessing: Witnessing, every: Duration) {
    loop {
        match PgConnection::connect_with(&opts).await {
            Ok(mut conn) => loop {
                if let Err(e) = witnessing.run_pass(&mut conn, false).await {
                    tracing::warn!(error = %e, "witnessing pass failed");
                    break;
                }
                tokio::time::sleep(every).await;
            },
            Err(e) => tracing::warn!(error = %e, "witnessing: cannot connect"),
        }
        tokio::time::sleep(every).await;
    }
}

/// A problem `custos verify` reports about cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CosignatureFinding {
    /// The latest checkpoint carries fewer valid cosignatures than required.
    TooFew { ledger_id: Uuid, size: u64, found: usize, required: usize },
    /// A witness refused a checkpoint as inconsistent with what it cosigned.
    Fork { ledger_id: Uuid, size: u64, witness: String, status: u16 },
}

impl std::fmt::Display for CosignatureFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooFew { ledger_id, size, found, required } => write!(
                f,
                "ledger {ledger_id}: checkpoint {size} has {found} valid cosignature(s) from the given witnesses, {required} required"
            ),
            Self::Fork { ledger_id, size, witness, status } => write!(
                f,
                "ledger {ledger_id}: witness {witness} refused checkpoint {size} (HTTP {status}): possible fork or rewritten ledger"
            ),
        }
    }
}

/// Counts the valid cosignatures by `witnesses` on every ledger's latest checkpoint and
/// lists stored fork alerts. Run as a role that reads every ledger (the auditor login).
pub async fn check(
    conn: &mut PgConnection,
    witnesses: &[CosignatureVerifier],
    required: usize,
) -> Result<Vec<CosignatureFinding>, sqlx::Error> {
    let mut out = Vec::new();
    let latest: Vec<(Uuid, i64, String)> = sqlx::query_as(
        "SELECT c.ledger_id, c.tree_size, c.signed_note || coalesce((SELECT string_agg(s.signature_line, '' \
           ORDER BY s.witness) FROM audit_cosignatures s WHERE s.ledger_id = c.ledger_id AND s.tree_size = c.tree_size), '') \
         FROM (SELECT DISTINCT ON (ledger_id) ledger_id, tree_size, signed_note FROM audit_checkpoints \
               ORDER BY ledger_id, tree_size DESC) c ORDER BY c.ledger_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    if required > 0 {
        for (ledger_id, size, note) in latest {
            let found = SignedNote::parse(note.as_bytes())
                .map(|n| CosignatureVerifier::count_valid(witnesses, &n))
                .unwrap_or(0);
            if found < required {
                out.push(CosignatureFinding::TooFew { ledger_id, size: size as u64, found, required });
            }
        }
    }
    let alerts: Vec<(Uuid, i64, String, i32)> = sqlx::query_as(
        "SELECT ledger_id, tree_size, witness, http_status FROM audit_witness_alerts ORDER BY created_at, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (ledger_id, size, witness, status) in alerts {
        out.push(CosignatureFinding::Fork { ledger_id, size: size as u64, witness, status: status as u16 });
    }
    Ok(out)
}
