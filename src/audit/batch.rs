//! One sequencer batch, in one transaction as `custos_sequencer`: claim inbox rows, give each
//! the next index of its ledger, hash it (leaf, chain, tree), append everything in one
//! statement per table, advance the ledger rows, commit. Either all of it happens or none:
//! a crash (or a lost connection) anywhere before COMMIT leaves the inbox rows in place.

use std::collections::HashMap;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::merkle::{self, Hash};
use super::signing::SYSTEM_LEDGER;
use super::store::{self, EVENT_COLUMNS, EventFields, LedgerState, StoreError};

#[derive(Debug, sqlx::FromRow)]
struct InboxRow {
    id: i64,
    #[sqlx(flatten)]
    event: EventFields,
}

/// Column arrays for the `UNNEST` insert into `audit_log`.
#[derive(Default)]
struct LogArrays {
    ledger_id: Vec<Uuid>,
    seq: Vec<i64>,
    event_id: Vec<Uuid>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    org_id: Vec<Option<Uuid>>,
    actor_id: Vec<Option<Uuid>>,
    actor_role: Vec<Option<String>>,
    action: Vec<String>,
    resource_type: Vec<String>,
    // text[] cannot nest unevenly in an array parameter: each row's ids travel as JSON.
    resource_ids: Vec<serde_json::Value>,
    patient_id: Vec<Option<Uuid>>,
    outcome: Vec<String>,
    request_id: Vec<Option<Uuid>>,
    client_ip: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    reason: Vec<Option<String>>,
    break_glass: Vec<bool>,
    imported: Vec<bool>,
    correlation_id: Vec<Option<String>>,
    // Like resource_ids: a JSON array per row.
    patient_ids: Vec<serde_json::Value>,
    format_version: Vec<i16>,
    leaf_hash: Vec<Vec<u8>>,
    chain_hash: Vec<Vec<u8>>,
}

#[derive(Default)]
struct NodeArrays {
    ledger_id: Vec<Uuid>,
    level: Vec<i16>,
    idx: Vec<i64>,
    hash: Vec<Vec<u8>>,
}

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// Events moved from the inbox into the log.
    pub integrated: usize,
    /// Ledgers that grew, with their new size.
    pub ledgers: Vec<(Uuid, u64)>,
    /// Oldest `occurred_at` among the integrated live (not imported) events.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runs one batch of at most `limit` inbox rows on `conn` (which must not be in a transaction).
pub async fn run_batch(conn: &mut PgConnection, limit: u32) -> Result<BatchOutcome, StoreError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL ROLE custos_sequencer").execute(&mut *tx).await?;
    // Queue semantics (never `id > last_seen`: identity values commit out of order).
    let sql = format!(
        "DELETE FROM audit_inbox WHERE id IN \
         (SELECT id FROM audit_inbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id, {EVENT_COLUMNS}"
    );
    let mut rows: Vec<InboxRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit)).fetch_all(&mut *tx).await?;
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(BatchOutcome::default());
    }
    rows.sort_unstable_by_key(|r| r.id);

    let mut ids: Vec<Uuid> = rows.iter().map(|r| r.event.ledger_id()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut states = store::load_states(&mut tx, &ids, true).await?;
    let existing: HashMap<Uuid, u64> = states.iter().map(|(id, s)| (*id, s.tree.size())).collect();

    let mut log = LogArrays::default();
    let mut nodes = NodeArrays::default();
    let mut created = Vec::with_capacity(64);
    let mut buf = Vec::with_capacity(1024);
    let mut oldest = None;
    for row in &rows {
        let ev = &row.event;
        let ledger_id = ev.ledger_id();
        let state = states.entry(ledger_id).or_insert_with(|| LedgerState::empty(ledger_id));
        let index = state.tree.size();
        buf.clear();
        let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt { ledger_id, problem: e.to_string() };
        ev.canonical(ledger_id, index).write_canonical(&mut buf).map_err(|e| corrupt(&e))?;
        let leaf = merkle::leaf_hash(&buf);
        let chain = merkle::chain_hash(&state.chain_head, &leaf);
        created.clear();
        state.tree.append_recording(leaf, &mut created)?;
        state.chain_head = chain;
        for node in created.iter().filter(|n| n.id.level > 0) {
            nodes.ledger_id.push(ledger_id);
            nodes.level.push(i16::from(node.id.level));
            nodes.idx.push(node.id.index as i64);
            nodes.hash.push(node.hash.to_vec());
        }
        if !ev.imported {
            oldest = Some(oldest.map_or(ev.occurred_at, |o: chrono::DateTime<_>| o.min(ev.occurred_at)));
        }
        push_log(&mut log, ev, ledger_id, index, &leaf, &chain);
    }

    insert_log(&mut tx, log).await?;
    if !nodes.ledger_id.is_empty() {
        sqlx::query(
            "INSERT INTO audit_tree_nodes (ledger_id, level, idx, hash) \
             SELECT * FROM unnest($1::uuid[], $2::int2[], $3::int8[], $4::bytea[])",
        )
        .bind(&nodes.ledger_id)
        .bind(&nodes.level)
        .bind(&nodes.idx)
        .bind(&nodes.hash)
        .execute(&mut *tx)
        .await?;
    }
    let mut ledgers = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some(state) = states.get(id) else { continue };
        save_state(&mut tx, state, existing.get(id).copied()).await?;
        ledgers.push((*id, state.tree.size()));
    }
    tx.commit().await?;
    Ok(BatchOutcome { integrated: rows.len(), ledgers, oldest })
}

fn push_log(log: &mut LogArrays, ev: &EventFields, ledger_id: Uuid, index: u64, leaf: &Hash, chain: &Hash) {
    log.ledger_id.push(ledger_id);
    log.seq.push(index as i64);
    log.event_id.push(ev.event_id);
    log.occurred_at.push(ev.occurred_at);
    log.org_id.push(ev.org_id);
    log.actor_id.push(ev.actor_id);
    log.actor_role.push(ev.actor_role.clone());
    log.action.push(ev.action.clone());
    log.resource_type.push(ev.resource_type.clone());
    log.resource_ids.push(serde_json::Value::from(ev.resource_ids.clone()));
    log.patient_id.push(ev.patient_id);
    log.outcome.push(ev.outcome.clone());
    log.request_id.push(ev.request_id);
    log.client_ip.push(ev.client_ip.clone());
    log.user_agent.push(ev.user_agent.clone());
    log.reason.push(ev.reason.clone());
    log.break_glass.push(ev.break_glass);
    log.imported.push(ev.imported);
    log.correlation_id.push(ev.correlation_id.clone());
    log.patient_ids.push(serde_json::Value::from(ev.patient_ids.iter().map(Uuid::to_string).collect::<Vec<_>>()));
    log.format_version.push(ev.format_version);
    log.leaf_hash.push(leaf.to_vec());
    log.chain_hash.push(chain.to_vec());
}

async fn insert_log(conn: &mut PgConnection, log: LogArrays) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (ledger_id, seq, event_id, occurred_at, org_id, actor_id, actor_role, action, \
         resource_type, resource_ids, patient_id, outcome, request_id, client_ip, user_agent, reason, break_glass, \
         imported, leaf_hash, chain_hash, correlation_id, patient_ids, format_version) \
         SELECT u.ledger_id, u.seq, u.event_id, u.occurred_at, u.org_id, u.actor_id, u.actor_role, \
                u.action::audit_action, u.resource_type, ARRAY(SELECT jsonb_array_elements_text(u.resource_ids)), \
                u.patient_id, u.outcome::audit_outcome, u.request_id, u.client_ip::inet, u.user_agent, u.reason, \
                u.break_glass, u.imported, u.leaf_hash, u.chain_hash, u.correlation_id, \
                ARRAY(SELECT jsonb_array_elements_text(u.patient_ids)::uuid), u.format_version \
         FROM unnest($1::uuid[], $2::int8[], $3::uuid[], $4::timestamptz[], $5::uuid[], $6::uuid[], $7::text[], \
                     $8::text[], $9::text[], $10::jsonb[], $11::uuid[], $12::text[], $13::uuid[], $14::text[], \
                     $15::text[], $16::text[], $17::bool[], $18::bool[], $19::bytea[], $20::bytea[], $21::text[], \
                     $22::jsonb[], $23::int2[]) \
              AS u(ledger_id, seq, event_id, occurred_at, org_id, actor_id, actor_role, action, resource_type, \
                   resource_ids, patient_id, outcome, request_id, client_ip, user_agent, reason, break_glass, \
                   imported, leaf_hash, chain_hash, correlation_id, patient_ids, format_version)",
    )
    .bind(log.ledger_id)
    .bind(log.seq)
    .bind(log.event_id)
    .bind(log.occurred_at)
    .bind(log.org_id)
    .bind(log.actor_id)
    .bind(log.actor_role)
    .bind(log.action)
    .bind(log.resource_type)
    .bind(log.resource_ids)
    .bind(log.patient_id)
    .bind(log.outcome)
    .bind(log.request_id)
    .bind(log.client_ip)
    .bind(log.user_agent)
    .bind(log.reason)
    .bind(log.break_glass)
    .bind(log.imported)
    .bind(log.leaf_hash)
    .bind(log.chain_hash)
    .bind(log.correlation_id)
    .bind(log.patient_ids)
    .bind(log.format_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the new state; an existing row is only updated from the size this batch read, so
/// a second sequencer (which the advisory lock should make impossible) fails instead of
/// forking the ledger.
async fn save_state(conn: &mut PgConnection, s: &LedgerState, old_size: Option<u64>) -> Result<(), StoreError> {
    let size = s.tree.size() as i64;
    let root = s.tree.root();
    let res = match old_size {
        Some(old) => {
            sqlx::query(
                "UPDATE audit_ledgers SET size = $2, chain_head = $3, tree_state = $4, root_hash = $5 \
             WHERE ledger_id = $1 AND size = $6",
            )
            .bind(s.ledger_id)
            .bind(size)
            .bind(&s.chain_head[..])
            .bind(s.tree.to_bytes())
            .bind(&root[..])
            .bind(old as i64)
            .execute(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(
                "INSERT INTO audit_ledgers (ledger_id, org_id, size, chain_head, tree_state, root_hash) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(s.ledger_id)
            .bind((s.ledger_id != SYSTEM_LEDGER).then_some(s.ledger_id))
            .bind(size)
            .bind(&s.chain_head[..])
            .bind(s.tree.to_bytes())
            .bind(&root[..])
            .execute(&mut *conn)
            .await?
        }
    };
    if res.rows_affected() != 1 {
        return Err(StoreError::Corrupt {
            ledger_id: s.ledger_id,
            problem: "ledger state changed under the sequencer (two sequencers?)".into(),
        });
    }
    Ok(())
}
