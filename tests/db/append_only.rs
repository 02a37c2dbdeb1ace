//! audit_log and audit_checkpoints cannot be changed or emptied by anyone — not the app, not
//! the sequencer, not the owner, not the superuser with replication-role tricks.

use sqlx::{Connection, PgConnection};

use crate::common::TestDb;
use crate::fixture;

/// Refused = the statement errors, or (for roles that RLS shows no rows) changes nothing.
async fn refused(conn: &mut PgConnection, setup: &str, sql: &str) -> bool {
    let mut tx = conn.begin().await.unwrap();
    if !setup.is_empty() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(setup.to_owned())).execute(&mut *tx).await.unwrap();
    }
    let res = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut *tx).await;
    tx.rollback().await.unwrap();
    match res {
        Err(_) => true,
        Ok(r) => r.rows_affected() == 0 && !sql.starts_with("TRUNCATE"),
    }
}

#[tokio::test]
async fn nobody_updates_deletes_or_truncates_the_ledger() {
    let db = TestDb::new().await;
    fixture::build(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap().detach();
    let setups = [
        ("superuser", ""),
        ("superuser as replica", "SET LOCAL session_replication_role = replica"),
        ("owner", "SET LOCAL ROLE custos_ledger_owner"),
        // The owner may lift FORCE RLS on its own table: the trigger still raises.
        (
            "owner without RLS",
            "SET LOCAL ROLE custos_ledger_owner; ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY; \
             ALTER TABLE audit_checkpoints NO FORCE ROW LEVEL SECURITY",
        ),
        ("app", "SET LOCAL ROLE custos_app"),
        ("sequencer", "SET LOCAL ROLE custos_sequencer"),
        ("auditor", "SET LOCAL ROLE custos_auditor"),
    ];
    for table in ["audit_log", "audit_checkpoints"] {
        for (who, setup) in setups {
            for stmt in [
                format!("UPDATE {table} SET created_at = now() WHERE true")
                    .replace("created_at", if table == "audit_log" { "integrated_at" } else { "created_at" }),
                format!("DELETE FROM {table}"),
                format!("TRUNCATE {table}"),
            ] {
                assert!(refused(&mut conn, setup, &stmt).await, "{who} could run `{stmt}`");
                if who.starts_with("superuser") || who == "owner without RLS" {
                    // These see every row: only the trigger stands in the way, and it must raise.
                    let mut tx = conn.begin().await.unwrap();
                    if !setup.is_empty() {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(setup.to_owned())).execute(&mut *tx).await.unwrap();
                    }
                    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.clone())).execute(&mut *tx).await.unwrap_err();
                    assert!(err.to_string().contains("append-only"), "{who} `{stmt}`: {err}");
                    tx.rollback().await.unwrap();
                }
            }
        }
    }
    // And the rows are all still there.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 4);
}

#[tokio::test]
async fn the_triggers_fire_always() {
    let db = TestDb::new().await;
    let modes: Vec<(String, String)> = sqlx::query_as(
        "SELECT tgname::text, tgenabled::text FROM pg_trigger \
         WHERE tgrelid IN ('audit_log'::regclass, 'audit_checkpoints'::regclass) AND NOT tgisinternal",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(modes.len(), 4);
    for (name, mode) in modes {
        assert_eq!(mode, "A", "{name} must be ENABLE ALWAYS");
    }
}

#[tokio::test]
async fn the_sequencer_may_append() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap().detach();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE custos_sequencer").execute(&mut *tx).await.unwrap();
    sqlx::query(
        "INSERT INTO audit_log (ledger_id, seq, event_id, occurred_at, org_id, action, resource_type, resource_ids, \
         outcome, break_glass, imported, leaf_hash, chain_hash) VALUES ($1, 3, gen_random_uuid(), now(), $1, 'read', \
         'patient', '{}', 'success', false, false, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))",
    )
    .bind(w.org_a)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}
