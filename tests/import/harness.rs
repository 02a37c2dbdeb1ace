//! A generated export, a fresh database with an organization, and a canonical dump of the
//! imported data in which every UUID is replaced by the legacy id it came from and every
//! sealed value is opened — so two databases can be compared for equality.

use std::path::PathBuf;

use custos::crypto::Kek;
use custos::crypto::store::FieldCrypto;
use custos::demo::Manifest;
use custos::import::{Options, Report};
use custos::keys::RootKeys;
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::TestDb;

pub struct Env {
    pub db: TestDb,
    pub dir: PathBuf,
    pub org: Uuid,
    pub keys: RootKeys,
    pub crypto: FieldCrypto,
    pub manifest: Manifest,
}

pub fn export(patients: u64, seed: u64, share: f64) -> (PathBuf, Manifest) {
    let dir = std::env::temp_dir().join(format!("custos-import-{}", Uuid::new_v4()));
    let opts = custos::demo::Options { patients, seed, out: dir.clone(), broken_share: share };
    let manifest = custos::demo::generate(&opts).unwrap();
    (dir, manifest)
}

pub async fn env(patients: u64, seed: u64, share: f64) -> Env {
    let (dir, manifest) = export(patients, seed, share);
    env_for(dir, manifest, RootKeys::random()).await
}

pub async fn env_for(dir: PathBuf, manifest: Manifest, keys: RootKeys) -> Env {
    let db = TestDb::new().await;
    let boot =
        custos::cli::bootstrap::run(&db.pool, &keys, "Legacy Clinic", "admin@legacy-clinic.example").await.unwrap();
    let crypto = custos::crypto::store::load(&db.pool, &Kek::from_bytes(*keys.kek.expose())).await.unwrap();
    Env { db, dir, org: boot.org_id, keys, crypto, manifest }
}

impl Env {
    pub fn options(&self) -> Options {
        Options {
            dir: self.dir.clone(),
            org: self.org,
            dry_run: false,
            batch_size: 16,
            batch_bytes: custos::import::DEFAULT_BATCH_BYTES,
            rejects: self.dir.join(format!("rejects-{}.ndjson", Uuid::new_v4())),
            quiet: true,
            operator: "tester".into(),
            crash_before_commit: None,
            interrupt_before_commit: None,
        }
    }

    pub async fn import(&self, opts: &Options) -> Report {
        custos::import::run(&self.db.pool, &self.crypto, opts).await.unwrap()
    }

    pub async fn dump(&self) -> Vec<String> {
        dump(&self.db.pool, &self.crypto).await
    }
}

fn open(c: &FieldCrypto, table: &str, column: &str, id: Uuid, v: &Option<Vec<u8>>) -> String {
    match v {
        None => "∅".into(),
        Some(b) => {
            String::from_utf8_lossy(&c.keyring.open(table, column, id, b).expect("sealed value opens")).into_owned()
        }
    }
}

/// Every imported row as text, ids replaced by legacy ids, sealed values opened, sorted
/// per table (audit events keep their inbox order, which is part of what is compared).
pub async fn dump(pool: &PgPool, c: &FieldCrypto) -> Vec<String> {
    let mut out = Vec::new();
    let q = |sql: &'static str| sqlx::query_as::<_, (Uuid, String, Option<Vec<u8>>, Option<Vec<u8>>)>(sql);
    // Each query: (row id for the AAD, plain columns joined as text, sealed a, sealed b).
    let tables: &[(&str, &str, &str, &str)] = &[
        (
            "users",
            "email_enc",
            "display_name_enc",
            "SELECT u.id, concat_ws('|', m.legacy_id, u.role, u.status, u.password_hash, u.created_at), u.email_enc, u.display_name_enc \
          FROM users u JOIN legacy_id_map m ON m.new_id = u.id",
        ),
        (
            "patients",
            "given_name_enc",
            "family_name_enc",
            "SELECT p.id, concat_ws('|', m.legacy_id, p.sex, p.created_at, length(p.mrn_bidx)), p.given_name_enc, p.family_name_enc \
          FROM patients p JOIN legacy_id_map m ON m.new_id = p.user_id",
        ),
        (
            "patients",
            "birth_date_enc",
            "mrn_enc",
            "SELECT p.id, m.legacy_id, p.birth_date_enc, p.mrn_enc FROM patients p JOIN legacy_id_map m ON m.new_id = p.user_id",
        ),
        (
            "patients",
            "phone_enc",
            "address_enc",
            "SELECT p.id, m.legacy_id, p.phone_enc, p.address_enc FROM patients p JOIN legacy_id_map m ON m.new_id = p.user_id",
        ),
        (
            "patient_medical_info",
            "emergency_contact_enc",
            "emergency_contact_enc",
            "SELECT i.id, concat_ws('|', m.legacy_id, i.blood_type, i.height_cm, i.weight_kg), i.emergency_contact_enc, NULL::bytea \
          FROM patient_medical_info i JOIN patients p ON p.id = i.patient_id JOIN legacy_id_map m ON m.new_id = p.user_id",
        ),
        (
            "allergies",
            "reaction_enc",
            "reaction_enc",
            "SELECT a.id, concat_ws('|', m.legacy_id, a.substance, a.severity, a.status, a.created_at), a.reaction_enc, NULL::bytea \
          FROM allergies a JOIN patients p ON p.id = a.patient_id JOIN legacy_id_map m ON m.new_id = p.user_id",
        ),
        (
            "medications",
            "notes_enc",
            "notes_enc",
            "SELECT x.id, concat_ws('|', m.legacy_id, x.name, x.dose, x.unit, x.route, x.frequency, x.start_date, x.end_date, x.status), \
          x.notes_enc, NULL::bytea FROM medications x JOIN patients p ON p.id = x.patient_id JOIN legacy_id_map m ON m.new_id = p.user_id",
        ),
        (
            "medical_history",
            "notes_enc",
            "notes_enc",
            "SELECT x.id, concat_ws('|', m.legacy_id, x.icd10_code, x.description, x.diagnosed_on, x.resolved_on), x.notes_enc, NULL::bytea \
          FROM medical_history x JOIN patients p ON p.id = x.patient_id JOIN legacy_id_map m ON m.new_id = p.user_id",
        ),
        (
            "conversations",
            "subject_enc",
            "subject_enc",
            "SELECT c.id, concat_ws('|', m.legacy_id, pm.legacy_id, dm.legacy_id, c.status, c.closed_at, c.created_at, c.updated_at), \
          c.subject_enc, NULL::bytea FROM conversations c JOIN legacy_id_map m ON m.new_id = c.id \
          JOIN patients p ON p.id = c.patient_id JOIN legacy_id_map pm ON pm.new_id = p.user_id \
          LEFT JOIN legacy_id_map dm ON dm.new_id = c.assigned_clinician_id",
        ),
        (
            "messages",
            "body_enc",
            "body_enc",
            "SELECT x.id, concat_ws('|', m.legacy_id, sm.legacy_id, x.created_at), x.body_enc, NULL::bytea FROM messages x \
          JOIN legacy_id_map m ON m.new_id = x.conversation_id JOIN legacy_id_map sm ON sm.new_id = x.sender_id",
        ),
        (
            "symptoms",
            "none",
            "none",
            "SELECT x.id, concat_ws('|', m.legacy_id, x.name, x.severity, x.onset), NULL::bytea, NULL::bytea FROM symptoms x \
          JOIN legacy_id_map m ON m.new_id = x.conversation_id",
        ),
        (
            "attachments",
            "filename_enc",
            "content_enc",
            "SELECT x.id, concat_ws('|', m.legacy_id, um.legacy_id, x.content_type, x.size_bytes, encode(x.sha256, 'hex'), x.created_at), \
          x.filename_enc, x.content_enc FROM attachments x JOIN legacy_id_map m ON m.new_id = x.conversation_id \
          JOIN legacy_id_map um ON um.new_id = x.uploaded_by",
        ),
        (
            "prescriptions",
            "instructions_enc",
            "cancel_reason_enc",
            "SELECT x.id, concat_ws('|', m.legacy_id, pm.legacy_id, dm.legacy_id, x.medication, x.dose, x.quantity, x.refills_allowed, \
          x.refills_used, x.issued_at, x.expires_at, x.status, x.cancelled_at), x.instructions_enc, x.cancel_reason_enc \
          FROM prescriptions x JOIN legacy_id_map m ON m.new_id = x.id JOIN patients p ON p.id = x.patient_id \
          JOIN legacy_id_map pm ON pm.new_id = p.user_id JOIN legacy_id_map dm ON dm.new_id = x.prescriber_id",
        ),
        (
            "care_team_members",
            "none",
            "none",
            "SELECT t.id, concat_ws('|', pm.legacy_id, cm.legacy_id), NULL::bytea, NULL::bytea FROM care_team_members t \
          JOIN patients p ON p.id = t.patient_id JOIN legacy_id_map pm ON pm.new_id = p.user_id \
          JOIN legacy_id_map cm ON cm.new_id = t.clinician_id",
        ),
    ];
    for (table, a, b, sql) in tables {
        let rows = q(sql).fetch_all(pool).await.unwrap();
        let mut lines: Vec<String> = rows
            .into_iter()
            .map(|(id, plain, x, y)| {
                format!("{table}|{plain}|{}|{}", open(c, table, a, id, &x), open(c, table, b, id, &y))
            })
            .collect();
        lines.sort();
        out.extend(lines);
    }
    let events: Vec<(String,)> = sqlx::query_as(
        "SELECT concat_ws('|', m.legacy_id, am.legacy_id, i.occurred_at, i.actor_role, i.action, i.resource_type, \
         cardinality(i.resource_ids), i.patient_id IS NOT NULL, i.outcome, i.client_ip, i.user_agent, i.reason, i.imported) \
         FROM audit_inbox i JOIN legacy_id_map m ON m.new_id = i.event_id JOIN legacy_id_map am ON am.new_id = i.actor_id \
         ORDER BY i.id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    out.extend(events.into_iter().map(|(l,)| format!("audit|{l}")));
    out
}

/// Reads an NDJSON file into JSON values.
pub fn ndjson(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
