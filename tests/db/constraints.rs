//! No constraint name in any answer (issue 13, item 7): every constraint and unique index in
//! the catalog has exactly one entry in `custos::error::CONSTRAINTS`, and a violation of each,
//! raised by PostgreSQL itself, is answered with that entry's status and field and never
//! with the constraint's name.

use std::collections::BTreeSet;

use actix_web::ResponseError;
use actix_web::body::MessageBody;
use custos::error::{ApiError, CONSTRAINTS, ConstraintAnswer};
use sqlx::PgPool;

use crate::common::TestDb;

/// Every constraint of the application's schemas, and every unique index that is not a
/// constraint's (PostgreSQL reports the index name for a unique violation), with the
/// SQLSTATE a violation raises.
async fn catalog(pool: &PgPool) -> Vec<(String, &'static str)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conname::text, c.contype::text FROM pg_constraint c \
         WHERE c.connamespace IN ('public'::regnamespace, 'custos'::regnamespace) AND c.contype <> 't' \
         UNION ALL \
         SELECT x.relname::text, 'u' FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid \
         WHERE i.indisunique AND x.relnamespace IN ('public'::regnamespace, 'custos'::regnamespace) \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(name, kind)| {
            let sqlstate = match kind.as_str() {
                "c" => "23514",
                "f" => "23503",
                "u" | "p" => "23505",
                "x" => "23P01",
                "n" => "23502",
                other => panic!("constraint {name}: unexpected kind {other}"),
            };
            (name, sqlstate)
        })
        .collect()
}

#[tokio::test]
async fn every_constraint_in_the_catalog_has_one_answer_and_none_is_stale() {
    let db = TestDb::new().await;
    let in_catalog: BTreeSet<String> = catalog(&db.pool).await.into_iter().map(|(n, _)| n).collect();
    let mut mapped = BTreeSet::new();
    for (name, _) in CONSTRAINTS {
        assert!(mapped.insert(name.to_string()), "{name} is listed twice in error::CONSTRAINTS");
    }
    let missing: Vec<_> = in_catalog.difference(&mapped).collect();
    let stale: Vec<_> = mapped.difference(&in_catalog).collect();
    assert!(missing.is_empty(), "constraints without an answer in error::CONSTRAINTS: {missing:?}");
    assert!(stale.is_empty(), "error::CONSTRAINTS lists constraints the schema does not have: {stale:?}");
}

/// The error PostgreSQL sends for a violation of `name` (RAISE sets the same fields a real
/// violation does: SQLSTATE and constraint name), through sqlx as any query error.
async fn violation(pool: &PgPool, name: &str, sqlstate: &str) -> sqlx::Error {
    let sql = format!(
        "DO $$ BEGIN RAISE EXCEPTION 'violates constraint \"{name}\"' USING ERRCODE = '{sqlstate}', \
         CONSTRAINT = '{name}'; END $$"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await.unwrap_err()
}

/// Status and body text of the answer the HTTP layer sends for `e`.
fn answer(e: ApiError) -> (u16, serde_json::Value) {
    let response = e.error_response();
    let status = response.status().as_u16();
    let bytes = response.into_body().try_into_bytes().unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn each_violation_is_answered_by_its_entry_and_never_names_the_constraint() {
    let db = TestDb::new().await;
    for (name, sqlstate) in catalog(&db.pool).await {
        let e = violation(&db.pool, &name, sqlstate).await;
        assert_eq!(e.as_database_error().unwrap().constraint(), Some(name.as_str()));
        let (status, body) = answer(ApiError::from(e));
        let text = body.to_string();
        assert!(!text.contains(&name), "{name}: answer names the constraint: {text}");
        let expected = CONSTRAINTS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a);
        match expected {
            Some(ConstraintAnswer::Invalid { field, rule }) => {
                assert_eq!(status, 422, "{name}: {text}");
                assert_eq!(body["error"]["code"], "validation_failed", "{name}");
                assert_eq!(body["error"]["field"], field, "{name}");
                assert_eq!(body["error"]["message"], format!("{field}: {rule}"), "{name}");
            }
            Some(ConstraintAnswer::Conflict(message)) => {
                assert_eq!((status, body["error"]["message"].as_str()), (409, Some(message)), "{name}");
            }
            Some(ConstraintAnswer::NotFound) => assert_eq!(status, 404, "{name}: {text}"),
            Some(ConstraintAnswer::Internal) => {
                assert_eq!((status, body["error"]["code"].as_str()), (500, Some("internal")), "{name}: {text}");
            }
            None => panic!("{name} has no entry (see the catalog test)"),
        }
    }
}

/// The same through real violations (not RAISE): the shape PostgreSQL gives a failed CHECK, a
/// unique index and a foreign key is what the mapping reads.
#[tokio::test]
async fn real_violations_are_answered_by_field() {
    let db = TestDb::new().await;
    let org = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO organizations (id, name) VALUES ($1, 'Constraint Clinic')")
        .bind(org)
        .execute(&db.pool)
        .await
        .unwrap();
    // A CHECK: an empty organization name.
    let e = sqlx::query("INSERT INTO organizations (name) VALUES ('  ')").execute(&db.pool).await.unwrap_err();
    let (status, body) = answer(e.into());
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("name")), "{body}");
    // A unique index: the same name in another case.
    let e = sqlx::query("INSERT INTO organizations (name) VALUES ('constraint clinic')")
        .execute(&db.pool)
        .await
        .unwrap_err();
    let (status, body) = answer(e.into());
    assert_eq!(status, 409, "{body}");
    assert!(!body.to_string().contains("organizations_name_key"));
    let patient: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO patients (org_id, mrn_enc, mrn_bidx, given_name_enc, family_name_enc, birth_date_enc) \
         VALUES ($1, '\\x00', decode(repeat('00', 32), 'hex'), '\\x00', '\\x00', '\\x00') RETURNING id",
    )
    .bind(org)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    // A foreign key the client chooses: a clinician who does not exist.
    let e = sqlx::query("INSERT INTO care_team_members (org_id, patient_id, clinician_id) VALUES ($1, $2, $1)")
        .bind(org)
        .bind(patient)
        .execute(&db.pool)
        .await
        .unwrap_err();
    let (status, body) = answer(e.into());
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("clinician_id")), "{body}");
    // The case at the column: 0.00001 rounds to 0 in numeric(12, 4) and fails the CHECK
    // (the domain type now refuses it first; tests/api/clinical/constraints.rs).
    let e = sqlx::query(
        "INSERT INTO medications (org_id, patient_id, name, dose, unit, route, frequency, start_date) \
         VALUES ($1, $2, 'x', 0.00001, 'mg', 'oral', 'daily', '2024-01-01')",
    )
    .bind(org)
    .bind(patient)
    .execute(&db.pool)
    .await
    .unwrap_err();
    let (status, body) = answer(e.into());
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("dose")), "{body}");
    assert!(!body.to_string().contains("medications_dose_check"), "{body}");
    // Written by the import alone: a bug, 500, and still no name.
    let e = sqlx::query(
        "INSERT INTO legacy_id_map (org_id, source, collection, legacy_id, new_id) VALUES ($1, '', 'c', 'x', $1)",
    )
    .bind(org)
    .execute(&db.pool)
    .await
    .unwrap_err();
    let (status, body) = answer(e.into());
    assert_eq!(status, 500, "{body}");
    assert!(!body.to_string().contains("legacy_id_map"), "{body}");
}
