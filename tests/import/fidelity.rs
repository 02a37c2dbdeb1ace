//! What was imported is what the source said: every sealed field opens to the source value,
//! legacy bcrypt passwords still verify (login upgrades them to Argon2id later), and the
//! activity log sits in the audit inbox, flagged imported, in source order, with its
//! original timestamps, after the data and before the import's own event.

use base64::Engine as _;
use custos::auth::password::verify_password;
use custos::import::ejson;
use secrecy::SecretString;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::harness::{self, Env};

/// id, filename_enc, content_enc, sha256, size_bytes
type AttachmentRow = (Uuid, Vec<u8>, Vec<u8>, Vec<u8>, i64);

fn docs(env: &Env, name: &str) -> Vec<Value> {
    std::fs::read_to_string(env.dir.join(format!("{name}.json")))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn oid(v: &Value) -> String {
    ejson::oid(v).unwrap()
}

async fn new_id(env: &Env, coll: &str, legacy: &str) -> Option<Uuid> {
    sqlx::query_scalar("SELECT new_id FROM legacy_id_map WHERE collection = $1 AND legacy_id = $2")
        .bind(coll)
        .bind(legacy)
        .fetch_optional(&env.db.pool)
        .await
        .unwrap()
}

fn open(env: &Env, table: &str, column: &str, id: Uuid, v: &[u8]) -> Vec<u8> {
    env.crypto.keyring.open(table, column, id, v).unwrap().to_vec()
}

#[tokio::test]
async fn every_sealed_field_opens_to_the_source_value() {
    let env = harness::env(40, 31, 0.05).await;
    assert!(env.import(&env.options()).await.balanced);
    let mut checked = 0;

    for u in docs(&env, "users") {
        let Some(uid) = new_id(&env, "users", &oid(&u["_id"])).await else { continue };
        let (email, name): (Vec<u8>, Option<Vec<u8>>) =
            sqlx::query_as("SELECT email_enc, display_name_enc FROM users WHERE id = $1")
                .bind(uid)
                .fetch_one(&env.db.pool)
                .await
                .unwrap();
        assert_eq!(
            open(&env, "users", "email_enc", uid, &email),
            u["email"].as_str().unwrap().to_lowercase().as_bytes()
        );
        let full = format!("{} {}", u["firstName"].as_str().unwrap(), u["lastName"].as_str().unwrap());
        assert_eq!(open(&env, "users", "display_name_enc", uid, &name.unwrap()), full.as_bytes());
        checked += 2;
        if u["role"] != "patient" {
            continue;
        }
        let (pid, given, family, dob, address): (Uuid, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) = sqlx::query_as(
            "SELECT id, given_name_enc, family_name_enc, birth_date_enc, address_enc FROM patients WHERE user_id = $1",
        )
        .bind(uid)
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
        assert_eq!(open(&env, "patients", "given_name_enc", pid, &given), u["firstName"].as_str().unwrap().as_bytes());
        assert_eq!(open(&env, "patients", "family_name_enc", pid, &family), u["lastName"].as_str().unwrap().as_bytes());
        let birth = ejson::date(&u["dateOfBirth"]).unwrap().date.to_string();
        assert_eq!(open(&env, "patients", "birth_date_enc", pid, &dob), birth.as_bytes());
        let addr: Value = serde_json::from_slice(&open(&env, "patients", "address_enc", pid, &address)).unwrap();
        assert_eq!(addr, u["address"]);
        let reactions: Vec<(Uuid, String, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT id, substance, reaction_enc FROM allergies WHERE patient_id = $1")
                .bind(pid)
                .fetch_all(&env.db.pool)
                .await
                .unwrap();
        let source = u["allergies"].as_array().unwrap();
        assert_eq!(reactions.len(), source.len());
        for (id, substance, reaction) in reactions {
            let s = source.iter().find(|a| a["substance"] == substance.as_str()).unwrap();
            assert_eq!(
                open(&env, "allergies", "reaction_enc", id, &reaction.unwrap()),
                s["reaction"].as_str().unwrap().as_bytes()
            );
            checked += 1;
        }
        checked += 4;
    }

    for c in docs(&env, "conversations") {
        let Some(cid) = new_id(&env, "conversations", &oid(&c["_id"])).await else { continue };
        let bodies: Vec<(Uuid, Vec<u8>)> =
            sqlx::query_as("SELECT id, body_enc FROM messages WHERE conversation_id = $1 ORDER BY created_at, id")
                .bind(cid)
                .fetch_all(&env.db.pool)
                .await
                .unwrap();
        let source: Vec<&str> =
            c["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
        let opened: Vec<String> = bodies
            .iter()
            .map(|(id, b)| String::from_utf8(open(&env, "messages", "body_enc", *id, b)).unwrap())
            .collect();
        assert_eq!(opened, source, "multi-line, Unicode message bodies survive byte for byte");
        checked += opened.len();
        let files: Vec<AttachmentRow> = sqlx::query_as(
            "SELECT id, filename_enc, content_enc, sha256, size_bytes FROM attachments WHERE conversation_id = $1",
        )
        .bind(cid)
        .fetch_all(&env.db.pool)
        .await
        .unwrap();
        let source = c["attachments"].as_array().unwrap();
        assert_eq!(files.len(), source.len());
        for ((id, name, content, sha, size), s) in files.into_iter().zip(source) {
            let data = match &s["data"] {
                Value::String(b) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
                other => base64::engine::general_purpose::STANDARD
                    .decode(other["$binary"]["base64"].as_str().unwrap())
                    .unwrap(),
            };
            assert_eq!(open(&env, "attachments", "content_enc", id, &content), data);
            assert_eq!(sha, Sha256::digest(&data).to_vec());
            assert_eq!(size as usize, data.len());
            assert_eq!(
                open(&env, "attachments", "filename_enc", id, &name),
                s["filename"].as_str().unwrap().as_bytes()
            );
            checked += 2;
        }
    }

    for p in docs(&env, "prescriptions") {
        let Some(id) = new_id(&env, "prescriptions", &oid(&p["_id"])).await else { continue };
        let enc: Vec<u8> = sqlx::query_scalar("SELECT instructions_enc FROM prescriptions WHERE id = $1")
            .bind(id)
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
        assert_eq!(
            open(&env, "prescriptions", "instructions_enc", id, &enc),
            p["instructions"].as_str().unwrap().as_bytes()
        );
        checked += 1;
    }
    assert!(checked > 300, "checked {checked} sealed values");
}

#[tokio::test]
async fn legacy_passwords_still_verify_and_are_flagged_for_upgrade() {
    let env = harness::env(12, 32, 0.0).await;
    assert!(env.import(&env.options()).await.balanced);
    let known: Vec<custos::demo::KnownPassword> =
        serde_json::from_str(&std::fs::read_to_string(env.dir.join("passwords.json")).unwrap()).unwrap();
    assert!(known.iter().any(|k| k.role == "patient") && known.iter().any(|k| k.role == "doctor"));
    for k in known {
        let uid = new_id(&env, "users", &k.legacy_id).await.unwrap();
        let (hash, role): (String, String) =
            sqlx::query_as("SELECT password_hash, role::text FROM users WHERE id = $1")
                .bind(uid)
                .fetch_one(&env.db.pool)
                .await
                .unwrap();
        assert!(hash.starts_with("$2b$"), "the legacy bcrypt hash is kept as is");
        assert_eq!(role, if k.role == "doctor" { "clinician" } else { k.role.as_str() });
        let ok = verify_password(&SecretString::from(k.password.clone()), &hash).unwrap();
        assert!(ok.needs_rehash, "bcrypt is upgraded to Argon2id at the next login");
        assert!(verify_password(&SecretString::from(format!("{}x", k.password)), &hash).is_err());
    }
}

#[tokio::test]
async fn imported_users_log_in_with_their_old_password_and_are_upgraded() {
    let env = harness::env(12, 34, 0.0).await;
    assert!(env.import(&env.options()).await.balanced);
    let known: Vec<custos::demo::KnownPassword> =
        serde_json::from_str(&std::fs::read_to_string(env.dir.join("passwords.json")).unwrap()).unwrap();
    let (address, _pool, _clock) = crate::common::serve(&env.db, &env.keys, &[]).await;
    let client = reqwest::Client::new();
    for k in known {
        let login = |password: String| {
            let client = client.clone();
            let url = format!("{address}/v1/auth/login");
            let email = k.email.clone();
            async move {
                client
                    .post(url)
                    .json(&serde_json::json!({ "email": email, "password": password }))
                    .send()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(login(format!("{}x", k.password)).await.status(), 401, "a wrong password is refused");
        let r = login(k.password.clone()).await;
        assert_eq!(r.status(), 200, "{} logs in with the legacy password", k.role);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["access_token"].is_string() || body["mfa_required"] == true, "{body}");
        let uid = new_id(&env, "users", &k.legacy_id).await.unwrap();
        let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(uid)
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "bcrypt was replaced by Argon2id at login");
        // And the upgraded hash still accepts the same password.
        assert_eq!(login(k.password.clone()).await.status(), 200);
    }
}

#[tokio::test]
async fn activity_logs_enter_the_audit_inbox_imported_in_order_after_their_data() {
    let env = harness::env(40, 33, 0.05).await;
    let report = env.import(&env.options()).await;
    assert!(report.balanced);
    let logs = &report.collections[3];

    let events: Vec<(i64, Uuid, chrono::DateTime<chrono::Utc>, String, bool)> = sqlx::query_as(
        "SELECT id, event_id, occurred_at, action::text, imported FROM audit_inbox WHERE org_id IS NOT NULL ORDER BY id",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    let imported: Vec<_> = events.iter().filter(|e| e.4).collect();
    assert_eq!(imported.len() as u64, logs.imported);

    // Source order and timestamps of the activity entries that were imported.
    let mut expected = Vec::new();
    for d in docs(&env, "activity_logs") {
        if let Some(id) = new_id(&env, "activity_logs", &oid(&d["_id"])).await {
            expected.push((id, ejson::datetime(&d["timestamp"]).unwrap()));
        }
    }
    let got: Vec<(Uuid, chrono::DateTime<chrono::Utc>)> = imported.iter().map(|e| (e.1, e.2)).collect();
    assert_eq!(got, expected, "same events, same order, original timestamps");
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));

    // After the data: every imported event comes after the bootstrap event and before the
    // import's own (not imported) event, which is last.
    let last = events.last().unwrap();
    assert_eq!((last.3.as_str(), last.4), ("import", false));
    let first = events[0].0;
    assert!(imported.iter().all(|e| e.0 > first && e.0 < last.0));
    let with_patient: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_inbox WHERE imported AND patient_id IS NOT NULL")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    assert!(with_patient > 0, "events about a patient's record name the patient");
}
