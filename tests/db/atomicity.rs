//! The audit record and the access it records commit together or not at all.

use custos::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use custos::db;

use crate::common::TestDb;
use crate::fixture;

async fn counts(db: &TestDb) -> (i64, i64) {
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_inbox").fetch_one(&db.pool).await.unwrap();
    let allergies: i64 = sqlx::query_scalar("SELECT count(*) FROM allergies").fetch_one(&db.pool).await.unwrap();
    (inbox, allergies)
}

#[tokio::test]
async fn a_failed_request_leaves_neither_audit_row_nor_data() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let before = counts(&db).await;
    let claims = w.claims(w.ca1);
    let ctx = AuditContext::from_claims(&claims);

    let mut tx = db::begin(&db.pool, &claims).await.unwrap();
    sqlx::query("INSERT INTO allergies (org_id, patient_id, recorded_by, substance, severity) VALUES ($1, $2, $3, 'latex', 'mild')")
        .bind(w.org_a)
        .bind(w.p1)
        .bind(w.ca1)
        .execute(&mut *tx)
        .await
        .unwrap();
    let event = AuditEvent::new(Action::Create, "allergy", Outcome::Success).patient(w.p1);
    audit::record(&mut tx, &ctx, &event).await.unwrap();
    // The request then fails (a bad ICD-10 code violates a CHECK): the transaction aborts.
    let err = sqlx::query("INSERT INTO medical_history (org_id, patient_id, icd10_code, diagnosed_on) VALUES ($1, $2, 'not-a-code', '2024-01-01')")
        .bind(w.org_a)
        .bind(w.p1)
        .execute(&mut *tx)
        .await;
    assert!(err.is_err());
    drop(tx); // rolled back
    assert_eq!(counts(&db).await, before, "no audit row and no data change");

    // The same request without the failure commits both, together.
    let mut tx = db::begin(&db.pool, &claims).await.unwrap();
    sqlx::query("INSERT INTO allergies (org_id, patient_id, recorded_by, substance, severity) VALUES ($1, $2, $3, 'latex', 'mild')")
        .bind(w.org_a)
        .bind(w.p1)
        .bind(w.ca1)
        .execute(&mut *tx)
        .await
        .unwrap();
    let id = audit::record(&mut tx, &ctx, &event).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(counts(&db).await, (before.0 + 1, before.1 + 1));
    let (actor, org, action, patient): (uuid::Uuid, uuid::Uuid, String, uuid::Uuid) =
        sqlx::query_as("SELECT actor_id, org_id, action::text, patient_id FROM audit_inbox WHERE event_id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((actor, org, action.as_str(), patient), (w.ca1, w.org_a, "create", w.p1));
}

#[tokio::test]
async fn claims_do_not_outlive_their_transaction() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap().detach();
    {
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        db::tx::set_claims(&mut tx, &w.claims(w.aa)).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM patients").fetch_one(&mut *tx).await.unwrap();
        assert_eq!(n, 2);
        tx.commit().await.unwrap();
    }
    // Same connection, next transaction: back to the login role with no claims.
    let (role, claim): (String, Option<String>) =
        sqlx::query_as("SELECT current_user::text, nullif(current_setting('custos.org_id', true), '')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(role, "postgres");
    assert_eq!(claim, None);
}

/// A request transaction that is dropped (an error path, a request future cancelled mid-query
/// or mid-BEGIN because the client went away) must leave the pooled connection as the login
/// role, outside any transaction, with its writes undone.
#[tokio::test]
async fn a_dropped_or_cancelled_request_transaction_does_not_leak_into_the_next_acquire() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let url = secrecy::SecretString::from(db.url.clone());
    let pool = db::connect(&url, 1).await.unwrap();
    let claims = w.claims(w.ca1);
    let allergies =
        || async { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM allergies").fetch_one(&db.pool).await.unwrap() };
    let before = allergies().await;

    let state = |pool: sqlx::PgPool| async move {
        let mut conn = pool.acquire().await.unwrap();
        let (user, claim): (String, Option<String>) =
            sqlx::query_as("SELECT current_user::text, nullif(current_setting('custos.user_id', true), '')")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        // SAVEPOINT works only inside a transaction block: it fails unless one was left open.
        let open_tx = sqlx::raw_sql("SAVEPOINT leak_probe").execute(&mut *conn).await.is_ok();
        (user, claim, open_tx)
    };

    // 1. Dropped after a write, without commit or rollback.
    let mut tx = db::begin(&pool, &claims).await.unwrap();
    sqlx::query("INSERT INTO allergies (org_id, patient_id, recorded_by, substance, severity) VALUES ($1, $2, $3, 'latex', 'mild')")
        .bind(w.org_a)
        .bind(w.p1)
        .bind(w.ca1)
        .execute(&mut *tx)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(state(pool.clone()).await, ("postgres".into(), None, false));

    // 2. The request future cancelled while its query runs.
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(200), async {
        let mut tx = db::begin(&pool, &claims).await.unwrap();
        sqlx::query("SELECT pg_sleep(1)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    })
    .await;
    assert!(cancelled.is_err(), "the request was cut off mid-query");
    assert_eq!(state(pool.clone()).await, ("postgres".into(), None, false));

    // 3. Cancelled while BEGIN itself is in flight (the request transaction's BEGIN carries the
    //    role and claims). Before the vendored sqlx-postgres fix this left the connection inside
    //    that transaction, as custos_app with this caller's claims, for the next borrower.
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(200), async {
        let tx = pool
            .begin_with(sqlx::AssertSqlSafe(format!(
                "BEGIN; SELECT set_config('role', 'custos_app', true), set_config('custos.user_id', '{}', true), \
                 pg_sleep(1)",
                w.ca1
            )))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    })
    .await;
    assert!(cancelled.is_err(), "the request was cut off during BEGIN");
    assert_eq!(state(pool.clone()).await, ("postgres".into(), None, false));

    // 4. The same with the request transaction's own begin: BEGIN, claims and the first
    //    queries pipelined (`db::tx::begin_with`), cut off before the answer came back.
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(200), async {
        let (tx, _) = db::tx::begin_with(&pool, &claims, [sqlx::query("SELECT pg_sleep(1)")]).await.unwrap();
        tx.commit().await.unwrap();
    })
    .await;
    assert!(cancelled.is_err(), "the request was cut off during its first round trip");
    assert_eq!(state(pool.clone()).await, ("postgres".into(), None, false));

    // 5. A transaction sqlx does not know of (BEGIN sent as plain SQL), left open: the pool
    //    closes that connection instead of handing it out again.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT set_config('role', 'custos_app', true)").execute(&mut *conn).await.unwrap();
    drop(conn);
    assert_eq!(state(pool.clone()).await, ("postgres".into(), None, false));
    assert_eq!(allergies().await, before, "nothing the dropped transactions wrote survived");
}
