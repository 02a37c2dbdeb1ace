//! Key rotation and rewrap: after `rotate` + `rewrap` every sealed value opens and none is
//! left on the old version; rewrap is idempotent; messages stay append-only otherwise; the
//! sealed-column list matches the catalog.

use std::collections::BTreeSet;

use custos::clinical::sealed::SEALED_COLUMNS;
use custos::crypto::{Kek, KeyVersion, Keyring};
use serde_json::json;
use uuid::Uuid;

use super::world::{self, call};
use crate::common::spawn_app;

#[tokio::test]
async fn rewrap_after_rotation_keeps_every_value_readable() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    let p = w.p1;
    call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/allergies"),
        &w.ca1,
        Some(json!({ "substance": "nuts", "reaction": "swelling", "severity": "severe" })),
    )
    .await;
    let (_, conv) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/conversations"),
        &w.pa1,
        Some(json!({ "subject": "rash", "message": "itchy" })),
    )
    .await;
    assert!(conv["id"].is_string(), "{conv}");
    let kek = Kek::from_bytes(*app.keys.kek.expose());

    let v2 = custos::cli::keys::rotate(&app.pool, &kek).await.unwrap();
    assert_eq!(v2, KeyVersion::new(2).unwrap());
    let before = custos::cli::keys::pending(&app.pool, v2).await.unwrap();
    assert!(before > 10, "old values exist: {before}");
    let report = custos::cli::keys::rewrap(&app.pool, &kek, 3, false).await.unwrap();
    assert_eq!((report.rewrapped, report.failed), (before, 0));
    assert_eq!(custos::cli::keys::pending(&app.pool, v2).await.unwrap(), 0, "nothing left on version 1");
    assert_eq!(custos::cli::keys::rewrap(&app.pool, &kek, 3, false).await.unwrap().rewrapped, 0, "idempotent");

    let keyring = custos::crypto::store::load(&app.pool, &kek).await.unwrap().keyring;
    let mut opened = 0;
    for (table, column) in SEALED_COLUMNS {
        let rows: Vec<(Uuid, Vec<u8>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")))
                .fetch_all(&app.pool)
                .await
                .unwrap();
        for (id, v) in rows {
            assert_eq!(Keyring::sealed_version(&v).unwrap(), v2, "{table}.{column}");
            keyring.open(table, column, id, &v).unwrap_or_else(|e| panic!("{table}.{column} {id}: {e}"));
            opened += 1;
        }
    }
    assert_eq!(opened, before);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_inbox WHERE action = 'key_management' AND org_id IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(events, 3, "rotate and both rewraps are audited");

    // Outside rewrap, messages stay append-only even for the superuser.
    let err = sqlx::query("UPDATE messages SET body_enc = body_enc").execute(&app.pool).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn every_sealed_column_of_the_schema_is_rewrapped() {
    let app = spawn_app().await;
    let catalog: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND column_name LIKE '%\\_enc'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let listed: BTreeSet<(String, String)> =
        SEALED_COLUMNS.iter().map(|(t, c)| (t.to_string(), c.to_string())).collect();
    assert_eq!(catalog, listed);
}

/// The version header of a stored allergy reaction.
async fn reaction_version(app: &crate::common::TestApp, id: &str) -> KeyVersion {
    let v: Vec<u8> = sqlx::query_scalar("SELECT reaction_enc FROM allergies WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    Keyring::sealed_version(&v).unwrap()
}

#[tokio::test]
async fn a_running_server_opens_values_under_a_rotated_key_and_then_seals_with_it() {
    // The periodic reload is far away: only the on-demand reload can make this pass.
    let app = crate::common::spawn_app_with(&[("CUSTOS_KEY_RELOAD_SECS", "3600")]).await;
    let w = world::build(&app).await;
    let p = w.p1;
    let allergy = |substance: &str| json!({ "substance": substance, "reaction": format!("{substance} rash"), "severity": "mild" });
    let (_, a1) = call(&app, "POST", &format!("/v1/patients/{p}/allergies"), &w.ca1, Some(allergy("oats"))).await;
    let a1 = a1["id"].as_str().unwrap().to_owned();
    assert_eq!(reaction_version(&app, &a1).await, KeyVersion::FIRST);

    // Rotate and rewrap elsewhere (another server's operator): every value is now on v2,
    // which this server has never loaded.
    let kek = Kek::from_bytes(*app.keys.kek.expose());
    let v2 = custos::cli::keys::rotate(&app.pool, &kek).await.unwrap();
    let report = custos::cli::keys::rewrap(&app.pool, &kek, 100, false).await.unwrap();
    assert!(report.rewrapped > 0 && report.failed == 0, "{report:?}");
    assert_eq!(reaction_version(&app, &a1).await, v2);

    let (s, chart) = call(&app, "GET", &format!("/v1/patients/{p}"), &w.ca1, None).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{chart}");
    assert_eq!(chart["allergies"][0]["reaction"], "oats rash");
    let (_, a2) = call(&app, "POST", &format!("/v1/patients/{p}/allergies"), &w.ca1, Some(allergy("rye"))).await;
    assert_eq!(reaction_version(&app, a2["id"].as_str().unwrap()).await, v2, "new writes use the reloaded key");

    // One event per request, the retried read included.
    let reads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_inbox WHERE actor_id = $1 AND resource_type = 'chart' AND action = 'read'",
    )
    .bind(w.ca1.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(reads, 1);
}

#[tokio::test]
async fn servers_move_new_writes_to_the_newest_key_within_one_reload_interval() {
    let app = crate::common::spawn_app_with(&[("CUSTOS_KEY_RELOAD_SECS", "1")]).await;
    let w = world::build(&app).await;
    let p = w.p1;
    let kek = Kek::from_bytes(*app.keys.kek.expose());
    let v2 = custos::cli::keys::rotate(&app.pool, &kek).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (s, a) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/allergies"),
        &w.ca1,
        Some(json!({ "substance": "soy", "reaction": "hives", "severity": "mild" })),
    )
    .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{a}");
    assert_eq!(reaction_version(&app, a["id"].as_str().unwrap()).await, v2);
    // Nothing was rewrapped yet: old values still open under version 1 after the reload.
    let (s, chart) = call(&app, "GET", &format!("/v1/patients/{p}"), &w.ca1, None).await;
    assert_eq!((s, chart["given_name"].as_str()), (reqwest::StatusCode::OK, Some("Pat")), "{chart}");
    let report = custos::cli::keys::rewrap(&app.pool, &kek, 100, false).await.unwrap();
    assert_eq!((report.failed, report.passes), (0, 2), "one pass that rewraps, one that finds nothing");
    assert_eq!(custos::cli::keys::pending(&app.pool, v2).await.unwrap(), 0);
}

/// Sign-in and account values (email, TOTP secret) sealed under a key this server has never
/// loaded open at once: the identity code reloads on demand too, not only periodically.
#[tokio::test]
async fn identity_values_under_a_rotated_key_open_without_waiting_for_the_periodic_reload() {
    let app = crate::common::spawn_app_with(&[("CUSTOS_KEY_RELOAD_SECS", "3600")]).await;
    let admin = app.admin().await;
    let kek = Kek::from_bytes(*app.keys.kek.expose());
    let v2 = custos::cli::keys::rotate(&app.pool, &kek).await.unwrap();
    let report = custos::cli::keys::rewrap(&app.pool, &kek, 100, false).await.unwrap();
    assert!(report.rewrapped > 0 && report.failed == 0, "{report:?}");
    let secret_enc: Vec<u8> =
        sqlx::query_scalar("SELECT secret_enc FROM mfa_credentials LIMIT 1").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(Keyring::sealed_version(&secret_enc).unwrap(), v2, "the TOTP secret moved to the new key");

    let (s, me) = app.get("/v1/me", &admin.access).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{me}");
    assert_eq!(me["email"], admin.email.as_str());
    // A new sign-in opens the TOTP secret (login_mfa asserts every step succeeds).
    let again = app.login_mfa(&admin.email, &admin.password, &admin.secret).await;
    assert_eq!(again.id, admin.id);
}
