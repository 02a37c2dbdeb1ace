//! No value changes silently: a hand-written export with every value the issue found changed
//! (a date-only field at a +05:30 offset, a dose with five decimals, names padded with NBSP
//! and ideographic spaces, an address with unsorted keys, a lower-case MRN, a year-9999
//! timestamp, control characters in a user agent, a NUL, an over-long message) — each is
//! stored exactly, counted in the report, or rejected naming its field.

use custos::keys::RootKeys;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{self, Env, ndjson};

pub const HASH: &str = "$2b$04$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const DOCTOR: &str = "5f1d7a2b3c4d5e6f7a8b0001";

/// A directory holding the given collection files (each a list of lines).
pub fn write_export(files: &[(&str, Vec<String>)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("custos-import-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, lines) in files {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
    }
    dir
}

pub fn doctor() -> Value {
    json!({"_id": {"$oid": DOCTOR}, "role": "doctor", "email": "dr.who@clinic.example", "password": HASH,
           "firstName": "Ada", "lastName": "Lovelace"})
}

pub fn patient(id: &str, email: &str) -> Value {
    json!({"_id": {"$oid": id}, "role": "patient", "email": email, "password": HASH,
           "firstName": "Jo", "lastName": "Doe", "dateOfBirth": {"$date": "1970-01-02T00:00:00Z"}})
}

async fn env_of(files: &[(&str, Vec<String>)]) -> Env {
    harness::env_for(write_export(files), custos::demo::Manifest::default(), RootKeys::random()).await
}

async fn patient_row(env: &Env, legacy: &str) -> (Uuid, Uuid) {
    sqlx::query_as("SELECT p.id, u.id FROM legacy_id_map m JOIN users u ON u.id = m.new_id JOIN patients p ON p.user_id = u.id WHERE m.legacy_id = $1")
        .bind(legacy)
        .fetch_one(&env.db.pool)
        .await
        .unwrap()
}

async fn opened(env: &Env, table: &str, column: &str, id: Uuid) -> String {
    let sql = format!("SELECT {column} FROM {table} WHERE id = $1");
    let v: Vec<u8> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&env.db.pool).await.unwrap();
    String::from_utf8(env.crypto.keyring.open(table, column, id, &v).unwrap().to_vec()).unwrap()
}

fn reject_for<'a>(rejects: &'a [Value], legacy: &str) -> &'a Value {
    rejects.iter().find(|r| r["legacy_id"] == legacy).unwrap_or_else(|| panic!("no reject for {legacy}: {rejects:?}"))
}

#[tokio::test]
async fn values_are_kept_counted_or_rejected_by_name() {
    let address = r#"{"street": "1 Main St", "city": "Springfield", "zip": "01101"}"#;
    let kept = format!(
        r#"{{"_id": {{"$oid": "5f1d7a2b3c4d5e6f7a8b0002"}}, "role": "patient", "email": "Jo.Doe@Example.org", "password": "{HASH}", "firstName": "\u00a0Jo\u3000", "lastName": "Doe", "dateOfBirth": {{"$date": "1985-03-04T00:00:00+05:30"}}, "mrn": "mrn-abc-7", "address": {address}, "height": 172.5, "currentMedications": [{{"name": "Drug", "dosage": "0.1234 mg", "frequency": "daily"}}]}}"#
    );
    let mut dose = patient("5f1d7a2b3c4d5e6f7a8b0003", "dose@example.org");
    dose["currentMedications"] = json!([{"name": "Drug", "dosage": "0.12345 mg", "frequency": "daily"}]);
    let mut height = patient("5f1d7a2b3c4d5e6f7a8b0004", "height@example.org");
    height["height"] = json!(170.25);
    let mut future = patient("5f1d7a2b3c4d5e6f7a8b0005", "future@example.org");
    future["createdAt"] = json!({"$date": "9999-12-31T00:00:00Z"});
    let mut y10k = patient("5f1d7a2b3c4d5e6f7a8b0006", "y10k@example.org");
    y10k["createdAt"] = json!({"$date": {"$numberLong": "253402300800000"}});
    let mut nul = patient("5f1d7a2b3c4d5e6f7a8b0007", "nul@example.org");
    nul["ssn"] = json!("123\u{0}45");
    let users = vec![
        doctor().to_string(),
        kept,
        dose.to_string(),
        height.to_string(),
        future.to_string(),
        y10k.to_string(),
        nul.to_string(),
    ];

    let long = "x".repeat(10_001);
    let conversation = json!({"_id": {"$oid": "6f1d7a2b3c4d5e6f7a8b0001"}, "patient": {"$oid": "5f1d7a2b3c4d5e6f7a8b0002"},
        "doctor": {"$oid": DOCTOR}, "messages": [
            {"sender": {"$oid": "5f1d7a2b3c4d5e6f7a8b0002"}, "content": "first"},
            {"sender": {"$oid": DOCTOR}, "content": long},
            {"sender": {"$oid": DOCTOR}, "content": "third"}]});
    let ua = format!("Mozilla\u{1b}[31m\r\nInjected\u{202e}{}", "y".repeat(600));
    let activity = json!({"_id": {"$oid": "7f1d7a2b3c4d5e6f7a8b0001"}, "user": {"$oid": DOCTOR}, "action": "login",
        "timestamp": {"$date": "2021-05-06T07:08:09Z"}, "userAgent": ua});
    let env = env_of(&[
        ("users", users),
        ("conversations", vec![conversation.to_string()]),
        ("activity_logs", vec![activity.to_string()]),
    ])
    .await;
    let opts = env.options();
    let report = env.import(&opts).await;
    assert!(report.balanced, "{}", report.render());
    let rejects = ndjson(&opts.rejects);

    // Kept exactly: the calendar date written, the MRN's case, the address text, the dose.
    let (pid, uid) = patient_row(&env, "5f1d7a2b3c4d5e6f7a8b0002").await;
    assert_eq!(opened(&env, "patients", "birth_date_enc", pid).await, "1985-03-04");
    assert_eq!(opened(&env, "patients", "mrn_enc", pid).await, "mrn-abc-7");
    assert_eq!(opened(&env, "patients", "address_enc", pid).await, address, "key order and spacing as written");
    let dose: String = sqlx::query_scalar("SELECT dose::text FROM medications WHERE patient_id = $1")
        .bind(pid)
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    assert_eq!(dose, "0.1234");
    // The chart carries the email (as login compares it), with the API's org-scoped index.
    assert_eq!(opened(&env, "patients", "email_enc", pid).await, "jo.doe@example.org");
    assert_eq!(opened(&env, "users", "email_enc", uid).await, "jo.doe@example.org");
    let bidx: Vec<u8> = sqlx::query_scalar("SELECT email_bidx FROM patients WHERE id = $1")
        .bind(pid)
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    let expected = env.crypto.blind.blind_index_scoped(
        custos::crypto::BlindIndexKind::Email.label(),
        env.org,
        "jo.doe@example.org",
    );
    assert_eq!(bidx, expected.to_vec());
    // The MRN is found case-insensitively, as the clinical API looks it up.
    let mrn_bidx: Vec<u8> = sqlx::query_scalar("SELECT mrn_bidx FROM patients WHERE id = $1")
        .bind(pid)
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    let upper = env.crypto.blind.blind_index_scoped(custos::crypto::BlindIndexKind::Mrn.label(), env.org, "MRN-ABC-7");
    assert_eq!(mrn_bidx, upper.to_vec());

    // Changed, and counted per field: the padded name, the upper-case email.
    assert_eq!(opened(&env, "patients", "given_name_enc", pid).await, "Jo");
    let users = &report.collections[0];
    assert_eq!(users.normalized.fields["firstName"]["surrounding white space removed"], 1, "{:?}", users.normalized);
    assert_eq!(users.normalized.fields["email"]["lower-cased"], 1);
    assert!(!users.normalized.fields.contains_key("mrn"), "the MRN is kept as written");

    // Rejected, naming the field: five decimals, a height the column would round, 9999, 10000, NUL.
    let r = reject_for(&rejects, "5f1d7a2b3c4d5e6f7a8b0003");
    assert_eq!(r["code"], "invalid_field");
    assert!(r["reason"].as_str().unwrap().contains("currentMedications[0].dosage"), "{r}");
    assert!(r["reason"].as_str().unwrap().contains("decimal places"), "{r}");
    let r = reject_for(&rejects, "5f1d7a2b3c4d5e6f7a8b0004");
    assert!(r["reason"].as_str().unwrap().contains("`height`"), "{r}");
    for id in ["5f1d7a2b3c4d5e6f7a8b0005", "5f1d7a2b3c4d5e6f7a8b0006"] {
        let r = reject_for(&rejects, id);
        assert_eq!(r["reason"], "invalid field `createdAt`: must be between 1900-01-01 and 2099-12-31", "{r}");
    }
    let r = reject_for(&rejects, "5f1d7a2b3c4d5e6f7a8b0007");
    assert_eq!(
        (r["code"].as_str(), r["reason"].as_str()),
        (Some("nul_character"), Some("NUL character (\\u0000) in field `ssn`"))
    );
    assert_eq!(users.rejected, 5);

    // The over-long message is rejected alone; the conversation and its other messages go in.
    let conv = &report.collections[1];
    assert_eq!((conv.imported, conv.rejected, conv.items_rejected), (1, 0, 1));
    let r = rejects.iter().find(|r| r["item"] == "messages[1]").expect("the message is listed alone");
    assert_eq!(r["legacy_id"], "6f1d7a2b3c4d5e6f7a8b0001");
    assert!(r["reason"].as_str().unwrap().contains("messages[1].content"), "{r}");
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(&env.db.pool).await.unwrap();
    assert_eq!(messages, 2);
    assert!(report.embedded.iter().all(|e| e.ok), "the rejected item is not expected: {:?}", report.embedded);

    // The user agent: control characters and bidi overrides replaced, cut to 512, both counted.
    let stored: String =
        sqlx::query_scalar("SELECT user_agent FROM audit_inbox WHERE imported").fetch_one(&env.db.pool).await.unwrap();
    assert!(stored.starts_with("Mozilla\u{fffd}[31m\u{fffd}\u{fffd}Injected\u{fffd}yyy"), "{stored:?}");
    assert_eq!(stored.chars().count(), 512);
    let activity = &report.collections[3].normalized.fields["userAgent"];
    assert_eq!((activity["control characters replaced by U+FFFD"], activity["cut to 512 characters"]), (1, 1));

    // A re-run reports the same tallies and lists the same rejects (the lone message included).
    let again = env.options();
    let second = env.import(&again).await;
    assert!(second.balanced, "{}", second.render());
    assert_eq!(second.collections[0].normalized.fields, users.normalized.fields);
    assert_eq!(second.collections[1].items_rejected, 1);
    assert_eq!(ndjson(&again.rejects).len(), rejects.len());
}
