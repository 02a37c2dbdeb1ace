//! The tamper matrix: the superuser (triggers disabled first) changes the ledger behind the
//! sequencer's back, and `verify` reports exactly the first bad index and what is wrong.

use custos::audit::merkle::{self, TreeState};
use custos::audit::signing::LedgerSigner;
use custos::audit::store::EventFields;
use custos::audit::verify::{Finding, Kind, verify_all};
use custos::keys::RootKeys;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::{ORIGIN, World, write_events};

/// 20 events in org A, checkpoints at 10 and 20; a few in org B that must stay clean.
async fn world() -> (World, String) {
    let w = World::new().await;
    write_events(&w.db.pool, Some(w.org_a), 10).await;
    w.drain().await;
    write_events(&w.db.pool, Some(w.org_a), 10).await;
    write_events(&w.db.pool, Some(w.org_b), 4).await;
    w.drain().await;
    let kept: String =
        sqlx::query_scalar("SELECT signed_note FROM audit_checkpoints WHERE ledger_id = $1 AND tree_size = 20")
            .bind(w.org_a)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    (w, kept)
}

/// Runs `sql` as the superuser with the append-only triggers off, verifies on the same
/// transaction, rolls back; returns org A's first finding (org B must be clean).
async fn tampered(w: &World, conn: &mut PgConnection, sql: &str, external: &[String]) -> Option<Finding> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(
        "ALTER TABLE audit_log DISABLE TRIGGER ALL; ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL; \
         ALTER TABLE audit_tree_nodes DISABLE TRIGGER ALL",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.replace("$A", &format!("'{}'", w.org_a)))).execute(&mut *tx).await.unwrap();
    let reports = verify_all(&mut tx, &[w.signer.verifier()], ORIGIN, external).await.unwrap();
    tx.rollback().await.unwrap();
    let b = reports.iter().find(|r| r.ledger_id == w.org_b).unwrap();
    assert!(b.finding.is_none(), "org B untouched: {:?}", b.finding);
    reports.into_iter().find(|r| r.ledger_id == w.org_a).unwrap().finding
}

fn at(f: Option<Finding>) -> (u64, Kind) {
    let f = f.expect("tampering must be detected");
    (f.index, f.kind)
}

#[tokio::test]
async fn verify_pinpoints_every_kind_of_tampering() {
    let (w, kept) = world().await;
    let mut conn = w.db.pool.acquire().await.unwrap().detach();
    assert_eq!(tampered(&w, &mut conn, "SELECT 1", std::slice::from_ref(&kept)).await, None, "clean ledger");

    let cases: [(&str, &str, (u64, Kind)); 8] = [
        (
            "one field of one event",
            "UPDATE audit_log SET actor_role = 'admin' WHERE ledger_id = $A AND seq = 7",
            (7, Kind::LeafMismatch),
        ),
        (
            "a hash-chain value",
            "UPDATE audit_log SET chain_hash = sha256('x') WHERE ledger_id = $A AND seq = 3",
            (3, Kind::ChainBreak),
        ),
        ("delete an event", "DELETE FROM audit_log WHERE ledger_id = $A AND seq = 12", (12, Kind::MissingIndex)),
        (
            "swap two events",
            "UPDATE audit_log SET seq = 1000 WHERE ledger_id = $A AND seq = 4; \
             UPDATE audit_log SET seq = 4 WHERE ledger_id = $A AND seq = 9; \
             UPDATE audit_log SET seq = 9 WHERE ledger_id = $A AND seq = 1000",
            (4, Kind::LeafMismatch),
        ),
        ("truncate the tail", "DELETE FROM audit_log WHERE ledger_id = $A AND seq >= 15", (15, Kind::MissingIndex)),
        (
            "replace a checkpoint with another key's",
            "", // filled below
            (10, Kind::BadSignature),
        ),
        (
            "put another size's note in a checkpoint row",
            "UPDATE audit_checkpoints SET signed_note = (SELECT signed_note FROM audit_checkpoints \
             WHERE ledger_id = $A AND tree_size = 20) WHERE ledger_id = $A AND tree_size = 10",
            (10, Kind::BadSignature),
        ),
        (
            "change a checkpoint's root column",
            "UPDATE audit_checkpoints SET root_hash = sha256('x') WHERE ledger_id = $A AND tree_size = 20",
            (20, Kind::BadSignature),
        ),
    ];
    for (what, sql, want) in cases {
        let sql = if sql.is_empty() { replace_checkpoint_sql(&w).await } else { sql.to_owned() };
        assert_eq!(at(tampered(&w, &mut conn, &sql, &[]).await), want, "{what}");
    }

    // A forged event appended with perfectly computed hashes is still one the ledger never
    // integrated.
    let forged = forged_append_sql(&w, &mut conn).await;
    assert_eq!(at(tampered(&w, &mut conn, &forged, &[]).await), (20, Kind::UnexpectedEntry));

    // A careful superuser truncates the tail *and* every trace of it in the database (state
    // rewound, later checkpoints deleted): the database alone now looks clean, and only a
    // checkpoint kept outside it shows the rollback.
    let rewind = rewind_sql(&w, &mut conn, 15).await;
    assert_eq!(tampered(&w, &mut conn, &rewind, &[]).await, None);
    assert_eq!(at(tampered(&w, &mut conn, &rewind, &[kept]).await), (15, Kind::MissingIndex));
    conn.close().await.ok();
}

async fn replace_checkpoint_sql(w: &World) -> String {
    let (size, root): (i64, Vec<u8>) =
        sqlx::query_as("SELECT tree_size, root_hash FROM audit_checkpoints WHERE ledger_id = $1 AND tree_size = 10")
            .bind(w.org_a)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    let mallory = LedgerSigner::new(ORIGIN, &RootKeys::random()).unwrap();
    let note = mallory.sign(w.org_a, size as u64, root.try_into().unwrap()).unwrap();
    format!("UPDATE audit_checkpoints SET signed_note = '{note}' WHERE ledger_id = $A AND tree_size = 10")
}

async fn forged_append_sql(w: &World, conn: &mut PgConnection) -> String {
    let head: Vec<u8> = sqlx::query_scalar("SELECT chain_head FROM audit_ledgers WHERE ledger_id = $1")
        .bind(w.org_a)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let ev = EventFields {
        event_id: Uuid::new_v4(),
        occurred_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
        org_id: Some(w.org_a),
        actor_id: None,
        actor_role: Some("system".into()),
        action: "read".into(),
        resource_type: "patient".into(),
        resource_ids: vec![],
        patient_id: None,
        outcome: "success".into(),
        request_id: None,
        client_ip: None,
        user_agent: None,
        reason: None,
        break_glass: false,
        imported: false,
        correlation_id: None,
        patient_ids: vec![],
        // The forged row below takes the log's default form, version 1.
        format_version: 1,
    };
    let leaf = ev.canonical(w.org_a, 20).leaf_hash().unwrap();
    let chain = merkle::chain_hash(&head.try_into().unwrap(), &leaf);
    format!(
        "INSERT INTO audit_log (ledger_id, seq, event_id, occurred_at, org_id, actor_role, action, resource_type, \
         resource_ids, outcome, break_glass, imported, leaf_hash, chain_hash) VALUES ($A, 20, '{}', \
         '2023-11-14T22:13:20.123456Z', $A, 'system', 'read', 'patient', '{{}}', 'success', false, false, \
         '\\x{}', '\\x{}')",
        ev.event_id,
        hex::encode(leaf),
        hex::encode(chain)
    )
}

async fn rewind_sql(w: &World, conn: &mut PgConnection, keep: i64) -> String {
    let rows: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT leaf_hash, chain_hash FROM audit_log WHERE ledger_id = $1 AND seq < $2 ORDER BY seq")
            .bind(w.org_a)
            .bind(keep)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let mut tree = TreeState::new();
    for (leaf, _) in &rows {
        tree.append(leaf.as_slice().try_into().unwrap()).unwrap();
    }
    let head = &rows.last().unwrap().1;
    format!(
        "DELETE FROM audit_log WHERE ledger_id = $A AND seq >= {keep}; \
         DELETE FROM audit_checkpoints WHERE ledger_id = $A AND tree_size > {keep}; \
         UPDATE audit_ledgers SET size = {keep}, checkpoint_size = 10, chain_head = '\\x{}', tree_state = '\\x{}', \
         root_hash = '\\x{}' WHERE ledger_id = $A",
        hex::encode(head),
        hex::encode(tree.to_bytes()),
        hex::encode(tree.root())
    )
}
