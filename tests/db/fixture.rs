//! A small world inserted as the superuser (bypassing RLS), so tests can then look at it
//! through the app role with different claims.
//!
//! Organization A: patients P1 (portal user pa1) and P2 (portal user pa2); clinician ca1 on
//! P1's care team; clinician ca2 on no care team but with a live break-glass grant on P2;
//! clinician ca3 with an *expired* grant on P1; admin aa; auditor ua.
//! Organization B: patient P3 (user pb), clinician cb on P3's team, admin ab.
//! Every clinical table gets one row per patient; identity tables a row per user.

use custos::db::{ClaimRole, Claims};
use sqlx::PgPool;
use uuid::Uuid;

pub struct World {
    pub org_a: Uuid,
    pub org_b: Uuid,
    pub p1: Uuid,
    pub p2: Uuid,
    pub p3: Uuid,
    pub pa1: Uuid,
    pub pa2: Uuid,
    pub ca1: Uuid,
    pub ca2: Uuid,
    pub ca3: Uuid,
    pub aa: Uuid,
    pub ua: Uuid,
    pub pb: Uuid,
    pub cb: Uuid,
    pub ab: Uuid,
}

/// Tables whose rows hang off a patient (all carry patient_id).
pub const CLINICAL_TABLES: &[&str] = &[
    "patient_medical_info",
    "allergies",
    "medications",
    "medical_history",
    "prescriptions",
    "conversations",
    "messages",
    "symptoms",
    "attachments",
];

impl World {
    pub fn claims(&self, who: Uuid) -> Claims {
        let (org, role) = if who == self.pa1 || who == self.pa2 {
            (self.org_a, ClaimRole::Patient)
        } else if who == self.ca1 || who == self.ca2 || who == self.ca3 {
            (self.org_a, ClaimRole::Clinician)
        } else if who == self.aa {
            (self.org_a, ClaimRole::Admin)
        } else if who == self.ua {
            (self.org_a, ClaimRole::Auditor)
        } else if who == self.pb {
            (self.org_b, ClaimRole::Patient)
        } else if who == self.cb {
            (self.org_b, ClaimRole::Clinician)
        } else if who == self.ab {
            (self.org_b, ClaimRole::Admin)
        } else {
            panic!("unknown actor")
        };
        Claims::user(who, org, role, Some(Uuid::new_v4()))
    }

    pub fn name(&self, who: Uuid) -> &'static str {
        let names = [
            (self.pa1, "patient P1"),
            (self.pa2, "patient P2"),
            (self.ca1, "clinician on P1's team"),
            (self.ca2, "clinician with break-glass on P2"),
            (self.ca3, "clinician with expired break-glass on P1"),
            (self.aa, "admin A"),
            (self.ua, "auditor A"),
            (self.pb, "patient P3 (org B)"),
            (self.cb, "clinician org B"),
            (self.ab, "admin B"),
        ];
        names.iter().find(|(id, _)| *id == who).map(|(_, n)| *n).unwrap_or("?")
    }

    pub fn patient_name(&self, p: Uuid) -> &'static str {
        if p == self.p1 {
            "P1"
        } else if p == self.p2 {
            "P2"
        } else if p == self.p3 {
            "P3"
        } else {
            "?"
        }
    }

    pub fn actors(&self) -> Vec<Uuid> {
        vec![self.pa1, self.pa2, self.ca1, self.ca2, self.ca3, self.aa, self.ua, self.pb, self.cb, self.ab]
    }
}

async fn exec(pool: &PgPool, sql: &'static str, ids: &[Uuid]) {
    let mut q = sqlx::query(sql);
    for id in ids {
        q = q.bind(id);
    }
    q.execute(pool).await.unwrap_or_else(|e| panic!("fixture `{sql}`: {e}"));
}

async fn user(pool: &PgPool, id: Uuid, org: Uuid, role: &str) {
    sqlx::query(
        "INSERT INTO users (id, org_id, role, email_enc, email_bidx, password_hash) \
         VALUES ($1, $2, $3::user_role, '\\x00', gen_random_bytes(32), '$argon2id$fixture')",
    )
    .bind(id)
    .bind(org)
    .bind(role)
    .execute(pool)
    .await
    .unwrap();
    // Identity rows per user: a session (with a refresh token), MFA credential, recovery code.
    let sid = Uuid::new_v4();
    exec(
        pool,
        "INSERT INTO sessions (id, org_id, user_id, expires_at) VALUES ($1, $2, $3, now() + interval '1 hour')",
        &[sid, org, id],
    )
    .await;
    exec(pool, "INSERT INTO refresh_tokens (org_id, session_id, token_hash, expires_at) VALUES ($1, $2, gen_random_bytes(32), now() + interval '1 day')", &[org, sid]).await;
    exec(pool, "INSERT INTO mfa_credentials (org_id, user_id, secret_enc) VALUES ($1, $2, '\\x00')", &[org, id]).await;
    exec(
        pool,
        "INSERT INTO recovery_codes (org_id, user_id, code_hash) VALUES ($1, $2, gen_random_bytes(32))",
        &[org, id],
    )
    .await;
}

async fn patient(pool: &PgPool, id: Uuid, org: Uuid, portal_user: Uuid, clinician: Uuid) {
    exec(pool, "INSERT INTO patients (id, org_id, user_id, mrn_enc, mrn_bidx, given_name_enc, family_name_enc, birth_date_enc) \
        VALUES ($1, $2, $3, '\\x00', gen_random_bytes(32), '\\x00', '\\x00', '\\x00')", &[id, org, portal_user]).await;
    exec(
        pool,
        "INSERT INTO care_team_members (org_id, patient_id, clinician_id) VALUES ($1, $2, $3)",
        &[org, id, clinician],
    )
    .await;
    exec(
        pool,
        "INSERT INTO patient_medical_info (org_id, patient_id, blood_type) VALUES ($1, $2, 'o_pos')",
        &[org, id],
    )
    .await;
    exec(
        pool,
        "INSERT INTO allergies (org_id, patient_id, substance, severity) VALUES ($1, $2, 'penicillin', 'severe')",
        &[org, id],
    )
    .await;
    exec(
        pool,
        "INSERT INTO medications (org_id, patient_id, name, dose, unit, route, frequency, start_date) \
        VALUES ($1, $2, 'metformin', 500, 'mg', 'oral', 'twice daily', '2024-01-01')",
        &[org, id],
    )
    .await;
    exec(pool, "INSERT INTO medical_history (org_id, patient_id, icd10_code, diagnosed_on) VALUES ($1, $2, 'E11.9', '2023-05-01')", &[org, id]).await;
    exec(pool, "INSERT INTO prescriptions (org_id, patient_id, prescriber_id, medication, dose, quantity, refills_allowed, expires_at) \
        VALUES ($1, $2, $3, 'metformin', '500 mg', 60, 2, now() + interval '6 months')", &[org, id, clinician]).await;
    let conv = Uuid::new_v4();
    exec(
        pool,
        "INSERT INTO conversations (id, org_id, patient_id, subject_enc) VALUES ($1, $2, $3, '\\x00')",
        &[conv, org, id],
    )
    .await;
    exec(pool, "INSERT INTO messages (org_id, conversation_id, patient_id, sender_id, body_enc) VALUES ($1, $2, $3, $4, '\\x00')", &[org, conv, id, portal_user]).await;
    exec(
        pool,
        "INSERT INTO symptoms (org_id, conversation_id, patient_id, name, severity) VALUES ($1, $2, $3, 'headache', 4)",
        &[org, conv, id],
    )
    .await;
    exec(pool, "INSERT INTO attachments (org_id, patient_id, conversation_id, filename_enc, content_type, size_bytes, sha256, content_enc) \
        VALUES ($1, $2, $3, '\\x00', 'image/png', 1, gen_random_bytes(32), '\\x00')", &[org, id, conv]).await;
    exec(
        pool,
        "INSERT INTO patient_invites (org_id, patient_id, code_hash, created_by, expires_at) \
        VALUES ($1, $2, gen_random_bytes(32), $3, now() + interval '72 hours')",
        &[org, id, clinician],
    )
    .await;
}

/// Audit log rows (inserted directly as the superuser, as the sequencer would).
async fn audit_row(pool: &PgPool, org: Uuid, seq: i64, actor: Uuid, patient: Option<Uuid>) {
    sqlx::query(
        "INSERT INTO audit_log (ledger_id, seq, event_id, occurred_at, org_id, actor_id, actor_role, action, \
         resource_type, resource_ids, patient_id, outcome, break_glass, imported, leaf_hash, chain_hash) \
         VALUES ($1, $2, gen_random_uuid(), now(), $1, $3, 'clinician', 'read', 'patient', '{}', $4, 'success', \
         false, false, gen_random_bytes(32), gen_random_bytes(32))",
    )
    .bind(org)
    .bind(seq)
    .bind(actor)
    .bind(patient)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO audit_checkpoints (ledger_id, tree_size, root_hash, signed_note) \
         VALUES ($1, $2, gen_random_bytes(32), 'note') ON CONFLICT DO NOTHING",
    )
    .bind(org)
    .bind(seq + 1)
    .execute(pool)
    .await
    .unwrap();
}

pub async fn build(pool: &PgPool) -> World {
    let w = World {
        org_a: Uuid::new_v4(),
        org_b: Uuid::new_v4(),
        p1: Uuid::new_v4(),
        p2: Uuid::new_v4(),
        p3: Uuid::new_v4(),
        pa1: Uuid::new_v4(),
        pa2: Uuid::new_v4(),
        ca1: Uuid::new_v4(),
        ca2: Uuid::new_v4(),
        ca3: Uuid::new_v4(),
        aa: Uuid::new_v4(),
        ua: Uuid::new_v4(),
        pb: Uuid::new_v4(),
        cb: Uuid::new_v4(),
        ab: Uuid::new_v4(),
    };
    for (org, name) in [(w.org_a, "Org A"), (w.org_b, "Org B")] {
        sqlx::query("INSERT INTO organizations (id, name) VALUES ($1, $2)")
            .bind(org)
            .bind(name)
            .execute(pool)
            .await
            .unwrap();
    }
    for (id, role) in [
        (w.pa1, "patient"),
        (w.pa2, "patient"),
        (w.ca1, "clinician"),
        (w.ca2, "clinician"),
        (w.ca3, "clinician"),
        (w.aa, "admin"),
        (w.ua, "auditor"),
    ] {
        user(pool, id, w.org_a, role).await;
    }
    for (id, role) in [(w.pb, "patient"), (w.cb, "clinician"), (w.ab, "admin")] {
        user(pool, id, w.org_b, role).await;
    }
    patient(pool, w.p1, w.org_a, w.pa1, w.ca1).await;
    patient(pool, w.p2, w.org_a, w.pa2, w.ca1).await;
    // P2's care team is ca1 too; ca2 only reaches P2 through break-glass.
    patient(pool, w.p3, w.org_b, w.pb, w.cb).await;
    exec(
        pool,
        "INSERT INTO break_glass_grants (org_id, patient_id, clinician_id, reason, granted_at, expires_at) \
        VALUES ($1, $2, $3, 'unconscious patient in the emergency department', now(), now() + interval '1 hour')",
        &[w.org_a, w.p2, w.ca2],
    )
    .await;
    exec(pool, "INSERT INTO break_glass_grants (org_id, patient_id, clinician_id, reason, granted_at, expires_at) \
        VALUES ($1, $2, $3, 'covering for a colleague during the night shift', now() - interval '2 hours', now() - interval '1 hour')", &[w.org_a, w.p1, w.ca3]).await;
    audit_row(pool, w.org_a, 0, w.ca1, Some(w.p1)).await;
    audit_row(pool, w.org_a, 1, w.ca1, Some(w.p2)).await;
    audit_row(pool, w.org_a, 2, w.aa, None).await;
    audit_row(pool, w.org_b, 0, w.cb, Some(w.p3)).await;
    exec(pool, "INSERT INTO legacy_id_map (org_id, source, collection, legacy_id, new_id) VALUES ($1, 'mongo', 'users', 'abc', $2)", &[w.org_a, w.pa1]).await;
    w
}
