//! `PgConnection::fetch_pipeline` (our addition to the vendored sqlx-postgres): several
//! queries, one Sync, each query's rows as `fetch_all` would return them.

use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::common::TestDb;
use crate::fixture;

fn texts(rows: &[PgRow]) -> Vec<String> {
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

#[tokio::test]
async fn a_pipeline_returns_what_each_query_returns_alone() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let queries = || {
        [
            sqlx::query("SELECT id::text FROM patients WHERE org_id = $1 ORDER BY id").bind(w.org_a),
            sqlx::query("SELECT id::text FROM patients WHERE org_id = $1 AND false").bind(w.org_a),
            sqlx::query("SELECT g::text FROM generate_series(1, $1) g").bind(250_i32),
            sqlx::query("SELECT 'no parameters'"),
        ]
    };
    let mut alone = Vec::new();
    for q in queries() {
        alone.push(texts(&q.fetch_all(&mut *conn).await.unwrap()));
    }
    assert_eq!(alone.iter().map(Vec::len).collect::<Vec<_>>(), [2, 0, 250, 1], "fixture as expected");
    // Twice: statements prepared by the first run come from the cache in the second.
    for _ in 0..2 {
        let piped = conn.fetch_pipeline(queries()).await.unwrap();
        assert_eq!(piped.iter().map(|rows| texts(rows)).collect::<Vec<_>>(), alone);
    }
    // A statement this connection has not prepared yet, in the middle of cached ones.
    let piped = conn
        .fetch_pipeline([
            sqlx::query("SELECT 'a'"),
            sqlx::query("SELECT $1::text || ' fresh'").bind("never prepared"),
            sqlx::query("SELECT 'no parameters'"),
        ])
        .await
        .unwrap();
    assert_eq!(
        piped.iter().map(|rows| texts(rows)).collect::<Vec<_>>(),
        [["a"], ["never prepared fresh"], ["no parameters"]]
    );
}

#[tokio::test]
async fn a_pipeline_is_one_sync_so_outside_a_transaction_it_is_one_implicit_transaction() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let xid = || sqlx::query("SELECT pg_current_xact_id()::text");
    // Separately, each statement is its own implicit transaction...
    let a = xid().fetch_one(&mut *conn).await.unwrap().get::<String, _>(0);
    let b = xid().fetch_one(&mut *conn).await.unwrap().get::<String, _>(0);
    assert_ne!(a, b);
    // ...pipelined, everything up to the one Sync shares one.
    let piped = conn.fetch_pipeline([xid(), xid(), xid()]).await.unwrap();
    let ids: Vec<String> = piped.iter().map(|rows| texts(rows).concat()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| id == &ids[0]), "one transaction: {ids:?}");
}

#[tokio::test]
async fn a_failing_query_fails_the_pipeline_and_leaves_the_connection_usable() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::query("CREATE TABLE piped (n int)").execute(&mut *conn).await.unwrap();
    // Outside a transaction: the whole pipeline is one implicit transaction, so the insert
    // before the failure is rolled back and the one after it never runs.
    let err = conn
        .fetch_pipeline([
            sqlx::query("INSERT INTO piped VALUES (1)"),
            sqlx::query("SELECT 1 / $1").bind(0_i32),
            sqlx::query("INSERT INTO piped VALUES (2)"),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("22012"), "{err}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM piped").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(n, 0);
    // A bind the statement cannot take fails the same way.
    let err = conn.fetch_pipeline([sqlx::query("SELECT $1::int").bind("not a number")]).await.unwrap_err();
    assert!(err.as_database_error().is_some(), "{err}");
    assert_eq!(texts(&conn.fetch_pipeline([sqlx::query("SELECT 'still fine'")]).await.unwrap()[0]), ["still fine"]);

    // Inside a transaction: the failure aborts it, as any failed statement would.
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    sqlx::query("INSERT INTO piped VALUES (3)").execute(&mut *tx).await.unwrap();
    assert!(tx.fetch_pipeline([sqlx::query("SELECT 1 / $1").bind(0_i32)]).await.is_err());
    let aborted = sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap_err();
    assert_eq!(aborted.as_database_error().and_then(|e| e.code()).as_deref(), Some("25P02"), "{aborted}");
    tx.rollback().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM piped").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(n, 0);
}

/// `PgConnection::begin_pipeline` + `Transaction::adopt` (our additions): `BEGIN` and the
/// queries in one round trip, the transaction left open for the caller to commit or roll back.
#[tokio::test]
async fn begin_pipeline_opens_one_transaction_that_commits_or_rolls_back_as_a_whole() {
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE piped (n int)").execute(&db.pool).await.unwrap();
    let xid = || sqlx::query("SELECT pg_current_xact_id()::text");
    let count =
        || async { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM piped").fetch_one(&db.pool).await.unwrap() };

    for commit in [true, false] {
        let mut conn = db.pool.acquire().await.unwrap();
        let piped = conn
            .begin_pipeline([xid(), sqlx::query("INSERT INTO piped VALUES ($1) RETURNING n::text").bind(7_i32)])
            .await
            .unwrap();
        assert_eq!(piped.len(), 2, "BEGIN's own result is not returned");
        assert_eq!(texts(&piped[1]), ["7"]);
        let mut tx = sqlx::Transaction::adopt(conn).unwrap();
        // Still the pipeline's transaction after its Sync: an explicit one, unlike fetch_pipeline's.
        let later = xid().fetch_one(&mut *tx).await.unwrap().get::<String, _>(0);
        assert_eq!(texts(&piped[0]), [later]);
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
    }
    assert_eq!(count().await, 1, "the committed insert stays, the rolled back one does not");

    // Nothing open to adopt: refused, and the connection is untouched.
    let conn = db.pool.acquire().await.unwrap();
    assert!(sqlx::Transaction::adopt(conn).is_err());

    // A failure anywhere leaves nothing open and nothing written.
    let mut conn = db.pool.acquire().await.unwrap();
    let err = conn
        .begin_pipeline([sqlx::query("INSERT INTO piped VALUES (8)"), sqlx::query("SELECT 1 / $1").bind(0_i32)])
        .await
        .unwrap_err();
    assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("22012"), "{err}");
    // Not even an aborted one (where every statement fails with 25P02)...
    sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
    // ...nor an open one (SAVEPOINT works only inside a transaction block).
    let open = sqlx::raw_sql("SAVEPOINT probe").execute(&mut *conn).await.is_ok();
    assert!(!open, "no transaction left open after a failed begin_pipeline");
    assert!(sqlx::Transaction::adopt(conn).is_err());
    assert_eq!(count().await, 1);
}
