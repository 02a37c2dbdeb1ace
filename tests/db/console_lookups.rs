//! The console's narrow look-ups (policies/85_console.sql), as the app role:
//! `custos.patient_by_mrn` answers ids only, to auditors and admins of the patient's
//! organization and nobody else, while the patients table stays closed to auditors;
//! `custos.rewrap_progress` counts the sealed values of the admin's organization by data-key
//! version, exactly as the rewrap command reads the version header, and nothing for others.

use std::collections::BTreeMap;

use custos::db;
use uuid::Uuid;

use crate::common::TestDb;
use crate::fixture;

async fn lookup(pool: &sqlx::PgPool, claims: &db::Claims, bidx: &[u8]) -> Vec<(Uuid, Option<Uuid>)> {
    let mut tx = db::begin(pool, claims).await.unwrap();
    let rows = sqlx::query_as("SELECT patient_id, account_id FROM custos.patient_by_mrn($1)")
        .bind(bidx)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    rows
}

#[tokio::test]
async fn patient_by_mrn_answers_ids_to_the_orgs_auditors_and_admins_only() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    let bidx = |id: Uuid| async move {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT mrn_bidx FROM patients WHERE id = $1")
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap()
    };
    let (b1, b3) = (bidx(w.p1).await, bidx(w.p3).await);
    let portal: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM patients WHERE id = $1").bind(w.p1).fetch_one(p).await.unwrap();
    assert_eq!(portal, Some(w.pa1));

    // The auditor and the admin of organization A find P1 — its id and portal account only.
    for who in [w.ua, w.aa] {
        assert_eq!(lookup(p, &w.claims(who), &b1).await, vec![(w.p1, Some(w.pa1))], "{}", w.name(who));
        // Organization B's patient, by its own blind index: not theirs to find.
        assert!(lookup(p, &w.claims(who), &b3).await.is_empty(), "{}", w.name(who));
    }
    // The auditor still reads no patient row directly.
    let mut tx = db::begin(p, &w.claims(w.ua)).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM patients").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(seen, 0, "auditors do not read the patients table");
    tx.rollback().await.unwrap();
    // Clinicians (even on P1's care team), patients, another organization's admin: nothing.
    for who in [w.ca1, w.ca2, w.pa1, w.ab, w.cb, w.pb] {
        assert!(lookup(p, &w.claims(who), &b1).await.is_empty(), "{}", w.name(who));
    }
    // No claims at all: nothing.
    assert!(lookup(p, &db::Claims::anonymous(None), &b1).await.is_empty());
    // What it answers, declared: two ids.
    let result: String = sqlx::query_scalar(
        "SELECT pg_get_function_result(oid) FROM pg_proc WHERE proname = 'patient_by_mrn' \
         AND pronamespace = 'custos'::regnamespace",
    )
    .fetch_one(p)
    .await
    .unwrap();
    assert_eq!(result, "TABLE(patient_id uuid, account_id uuid)");
}

#[tokio::test]
async fn patient_of_org_answers_ids_to_the_orgs_auditors_only() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    let of_org = |claims: db::Claims, patient: Uuid| async move {
        let mut tx = db::begin(p, &claims).await.unwrap();
        let rows: Vec<(Uuid, Option<Uuid>)> =
            sqlx::query_as("SELECT patient_id, account_id FROM custos.patient_of_org($1)")
                .bind(patient)
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        tx.rollback().await.unwrap();
        rows
    };
    // Organization A's auditor: P1 and its portal account; B's patient and unknown ids: nothing.
    assert_eq!(of_org(w.claims(w.ua), w.p1).await, vec![(w.p1, Some(w.pa1))]);
    assert!(of_org(w.claims(w.ua), w.p3).await.is_empty(), "another organization's patient");
    assert!(of_org(w.claims(w.ua), Uuid::new_v4()).await.is_empty(), "no such patient");
    // Every other role reads patients through RLS (or not at all): nothing here.
    for who in [w.aa, w.ca1, w.ca2, w.pa1, w.ab, w.cb, w.pb] {
        assert!(of_org(w.claims(who), w.p1).await.is_empty(), "{}", w.name(who));
    }
    assert!(of_org(db::Claims::anonymous(None), w.p1).await.is_empty());
}

/// Sealed values of `org` by version header, read as the superuser with the rewrap command's
/// expression over `SEALED_COLUMNS`.
async fn sealed_by_version(pool: &sqlx::PgPool, org: Uuid) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for (table, column) in custos::clinical::sealed::SEALED_COLUMNS {
        let sql = format!(
            "SELECT ('x' || encode(substring({column} from 1 for 4), 'hex'))::bit(32)::int, count(*) FROM {table} \
             WHERE org_id = $1 AND {column} IS NOT NULL GROUP BY 1"
        );
        let rows: Vec<(i32, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(pool).await.unwrap();
        for (v, n) in rows {
            *out.entry(v).or_default() += n;
        }
    }
    out
}

async fn progress(pool: &sqlx::PgPool, claims: &db::Claims) -> BTreeMap<i32, i64> {
    let mut tx = db::begin(pool, claims).await.unwrap();
    let rows: Vec<(i32, i64)> =
        sqlx::query_as("SELECT version, sum(sealed)::bigint FROM custos.rewrap_progress() GROUP BY 1")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.rollback().await.unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn rewrap_progress_counts_the_admins_organization_by_key_version() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    let (a, b) = (sealed_by_version(p, w.org_a).await, sealed_by_version(p, w.org_b).await);
    assert!(a.values().sum::<i64>() > 0, "the fixture seals values");
    assert_eq!(progress(p, &w.claims(w.aa)).await, a);
    assert_eq!(progress(p, &w.claims(w.ab)).await, b);
    assert_ne!(a, b, "per organization, not the installation");
    for who in [w.ua, w.ca1, w.pa1] {
        assert!(progress(p, &w.claims(who)).await.is_empty(), "{}", w.name(who));
    }
}
