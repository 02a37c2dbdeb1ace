//! `custos import verify`: after an import every field of every imported document is equal;
//! a value changed in the database afterwards (a sealed message body, a plain dose) is found
//! and named by document id and field, and the check records its own audit event.

use custos::import::verify::{VerifyOptions, verify};
use uuid::Uuid;

use crate::harness::{self, Env};

fn options(env: &Env) -> VerifyOptions {
    VerifyOptions {
        dir: env.dir.clone(),
        org: env.org,
        batch_size: 7,
        batch_bytes: custos::import::DEFAULT_BATCH_BYTES,
        operator: "auditor".into(),
    }
}

#[tokio::test]
async fn every_imported_field_is_equal_and_a_changed_one_is_named() {
    let env = harness::env(30, 51, 0.08).await;
    let report = env.import(&env.options()).await;
    assert!(report.balanced, "{}", report.render());

    let checked = verify(&env.db.pool, &env.crypto, &options(&env)).await.unwrap();
    assert!(checked.ok, "{}", checked.render());
    for (v, c) in checked.collections.iter().zip(&report.collections) {
        assert_eq!(v.read, c.read, "{}", v.name);
        assert_eq!(v.compared, c.imported, "{}: every imported document compared", v.name);
        assert_eq!(v.compared + v.refused_by_rules + v.not_imported, v.read, "{}", v.name);
    }
    let users = &checked.collections[0];
    assert!(users.fields_compared > users.compared * 10, "field by field: {}", users.fields_compared);

    // Change a sealed given name (validly sealed, other text) and a plain dose, bypassing the
    // triggers as only a superuser can (what verify exists to catch).
    let mut tx = env.db.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
    let (msg, conv): (Uuid, String) = sqlx::query_as(
        "SELECT x.id, m.legacy_id FROM patients x JOIN legacy_id_map m ON m.new_id = x.user_id ORDER BY x.id LIMIT 1",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let forged = env.crypto.keyring.seal("patients", "given_name_enc", msg, b"not what the patient wrote").unwrap();
    sqlx::query("UPDATE patients SET given_name_enc = $1 WHERE id = $2")
        .bind(forged)
        .bind(msg)
        .execute(&env.db.pool)
        .await
        .unwrap();
    let user: String = sqlx::query_scalar(
        "WITH x AS (SELECT id, patient_id FROM medications ORDER BY id LIMIT 1), \
         u AS (UPDATE medications SET dose = dose + 1 WHERE id = (SELECT id FROM x)) \
         SELECT m.legacy_id FROM x JOIN patients p ON p.id = x.patient_id JOIN legacy_id_map m ON m.new_id = p.user_id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let checked = verify(&env.db.pool, &env.crypto, &options(&env)).await.unwrap();
    assert!(!checked.ok);
    let found: Vec<(String, String, &str)> =
        checked.mismatches.iter().map(|m| (m.legacy_id.clone(), m.field.clone(), m.problem)).collect();
    assert!(found.contains(&(conv.clone(), "patients[0].given_name_enc".into(), "differs")), "{found:?}");
    assert!(
        found.iter().any(|(id, f, _)| *id == user && f.starts_with("medications[") && f.ends_with("].dose")),
        "{found:?}"
    );
    assert_eq!(checked.mismatch_total, 2, "{found:?}");
    assert!(!checked.render().contains("not what the patient wrote"), "no values printed");

    let events: Vec<String> = sqlx::query_scalar(
        "SELECT reason FROM audit_inbox WHERE action = 'import' AND reason LIKE 'legacy import verify%' ORDER BY id",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
    assert!(events[1].contains("operator auditor") && events[1].ends_with("2 mismatches"), "{}", events[1]);
}
