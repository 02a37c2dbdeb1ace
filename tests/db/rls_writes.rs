//! The write side of the RLS matrix: INSERTs and UPDATEs outside the policy fail (or touch
//! nothing), inside succeed — as `custos_app` with claims, the way every request runs.

use custos::db::{self, Claims};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::TestDb;
use crate::fixture::{self, World};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok(u64),
    Denied,
}

/// Runs one statement under `claims` (rolled back) and reports what the database did.
pub(crate) async fn attempt(pool: &PgPool, claims: &Claims, sql: &'static str, binds: &[Uuid]) -> Outcome {
    let mut tx = db::begin(pool, claims).await.unwrap();
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(b);
    }
    let out = match q.execute(&mut *tx).await {
        Ok(r) => Outcome::Ok(r.rows_affected()),
        // 42501: RLS WITH CHECK violation or missing privilege.
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42501") => Outcome::Denied,
        Err(e) => panic!("`{sql}`: unexpected error {e}"),
    };
    tx.rollback().await.unwrap();
    out
}

const INSERT_ALLERGY: &str =
    "INSERT INTO allergies (org_id, patient_id, substance, severity) VALUES ($1, $2, 'latex', 'mild')";
const INSERT_HISTORY: &str =
    "INSERT INTO medical_history (org_id, patient_id, icd10_code, diagnosed_on) VALUES ($1, $2, 'I10', '2024-02-02')";
const INSERT_CONVERSATION: &str =
    "INSERT INTO conversations (org_id, patient_id, subject_enc) VALUES ($1, $2, '\\x00')";
const INSERT_PRESCRIPTION: &str = "INSERT INTO prescriptions (org_id, patient_id, prescriber_id, medication, dose, quantity, refills_allowed, expires_at) \
    VALUES ($1, $2, $3, 'lisinopril', '10 mg', 30, 1, now() + interval '1 month')";
const UPDATE_ALLERGIES: &str = "UPDATE allergies SET severity = 'mild' WHERE patient_id = $1";

#[tokio::test]
async fn clinician_writes_need_care_team_or_live_break_glass() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    for sql in [INSERT_ALLERGY, INSERT_HISTORY] {
        assert_eq!(attempt(p, &w.claims(w.ca1), sql, &[w.org_a, w.p1]).await, Outcome::Ok(1), "care team");
        assert_eq!(attempt(p, &w.claims(w.ca2), sql, &[w.org_a, w.p2]).await, Outcome::Ok(1), "break-glass");
        assert_eq!(attempt(p, &w.claims(w.ca2), sql, &[w.org_a, w.p1]).await, Outcome::Denied, "no relation");
        assert_eq!(attempt(p, &w.claims(w.ca3), sql, &[w.org_a, w.p1]).await, Outcome::Denied, "expired grant");
        assert_eq!(attempt(p, &w.claims(w.aa), sql, &[w.org_a, w.p1]).await, Outcome::Denied, "admin");
        assert_eq!(attempt(p, &w.claims(w.ua), sql, &[w.org_a, w.p1]).await, Outcome::Denied, "auditor");
        assert_eq!(attempt(p, &w.claims(w.pa1), sql, &[w.org_a, w.p1]).await, Outcome::Denied, "patient");
        // Cross-organization: claiming the other org's id or pointing at its patient fails.
        assert_eq!(attempt(p, &w.claims(w.cb), sql, &[w.org_a, w.p1]).await, Outcome::Denied, "org B into A");
        assert_eq!(attempt(p, &w.claims(w.ca1), sql, &[w.org_b, w.p3]).await, Outcome::Denied, "org A into B");
        assert_eq!(attempt(p, &Claims::anonymous(None), sql, &[w.org_a, w.p1]).await, Outcome::Denied, "no claims");
    }
    // UPDATE outside the policy matches no row rather than failing.
    assert_eq!(attempt(p, &w.claims(w.ca1), UPDATE_ALLERGIES, &[w.p1]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.ca2), UPDATE_ALLERGIES, &[w.p1]).await, Outcome::Ok(0));
    assert_eq!(attempt(p, &w.claims(w.aa), UPDATE_ALLERGIES, &[w.p1]).await, Outcome::Ok(0));
    assert_eq!(attempt(p, &w.claims(w.cb), UPDATE_ALLERGIES, &[w.p1]).await, Outcome::Ok(0));
    // Nobody deletes clinical rows (no privilege), not even the care team.
    let del = "DELETE FROM allergies WHERE patient_id = $1";
    assert_eq!(attempt(p, &w.claims(w.ca1), del, &[w.p1]).await, Outcome::Denied);
}

#[tokio::test]
async fn only_the_prescriber_themself_prescribes() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    assert_eq!(attempt(p, &w.claims(w.ca1), INSERT_PRESCRIPTION, &[w.org_a, w.p1, w.ca1]).await, Outcome::Ok(1));
    // In someone else's name, or by a patient/admin: refused.
    assert_eq!(attempt(p, &w.claims(w.ca1), INSERT_PRESCRIPTION, &[w.org_a, w.p1, w.ca2]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.aa), INSERT_PRESCRIPTION, &[w.org_a, w.p1, w.aa]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.pa1), INSERT_PRESCRIPTION, &[w.org_a, w.p1, w.pa1]).await, Outcome::Denied);
}

#[tokio::test]
async fn patients_write_their_own_case_flow_only() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    assert_eq!(attempt(p, &w.claims(w.pa1), INSERT_CONVERSATION, &[w.org_a, w.p1]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.pa1), INSERT_CONVERSATION, &[w.org_a, w.p2]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.aa), INSERT_CONVERSATION, &[w.org_a, w.p1]).await, Outcome::Denied);
    // Messages: in one's own name only, and never edited.
    let conv: Uuid =
        sqlx::query_scalar("SELECT id FROM conversations WHERE patient_id = $1").bind(w.p1).fetch_one(p).await.unwrap();
    let msg = "INSERT INTO messages (org_id, conversation_id, patient_id, sender_id, body_enc) VALUES ($1, $2, $3, $4, '\\x00')";
    assert_eq!(attempt(p, &w.claims(w.pa1), msg, &[w.org_a, conv, w.p1, w.pa1]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.pa1), msg, &[w.org_a, conv, w.p1, w.ca1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.ca1), msg, &[w.org_a, conv, w.p1, w.ca1]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.pa2), msg, &[w.org_a, conv, w.p1, w.pa2]).await, Outcome::Denied);
    let edit = "UPDATE messages SET body_enc = '\\x01' WHERE patient_id = $1";
    assert_eq!(attempt(p, &w.claims(w.pa1), edit, &[w.p1]).await, Outcome::Denied);
}

#[tokio::test]
async fn identity_writes_stay_in_bounds() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    // Nobody raises their own role: the column is not updatable by the app at all.
    let raise = "UPDATE users SET role = 'admin' WHERE id = $1";
    assert_eq!(attempt(p, &w.claims(w.ca1), raise, &[w.ca1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.aa), raise, &[w.ca1]).await, Outcome::Denied);
    // An admin manages their org's users, not another org's.
    let disable = "UPDATE users SET status = 'disabled' WHERE id = $1";
    assert_eq!(attempt(p, &w.claims(w.aa), disable, &[w.ca1]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.aa), disable, &[w.cb]).await, Outcome::Ok(0));
    assert_eq!(attempt(p, &w.claims(w.ca1), disable, &[w.ca2]).await, Outcome::Ok(0));
    let create_user = "INSERT INTO users (org_id, role, email_enc, email_bidx, password_hash) \
        VALUES ($1, 'clinician', '\\x00', gen_random_bytes(32), '$argon2id$x')";
    assert_eq!(attempt(p, &w.claims(w.aa), create_user, &[w.org_a]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.aa), create_user, &[w.org_b]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.ca1), create_user, &[w.org_a]).await, Outcome::Denied);
    // Care teams are assigned by admins of the same org.
    let assign = "INSERT INTO care_team_members (org_id, patient_id, clinician_id) VALUES ($1, $2, $3)";
    assert_eq!(attempt(p, &w.claims(w.aa), assign, &[w.org_a, w.p1, w.ca2]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.ca2), assign, &[w.org_a, w.p1, w.ca2]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.ab), assign, &[w.org_a, w.p1, w.ca2]).await, Outcome::Denied);
    // Break-glass grants are taken by a clinician for themself.
    let grant = "INSERT INTO break_glass_grants (org_id, patient_id, clinician_id, reason, expires_at) \
        VALUES ($1, $2, $3, 'patient arrived unconscious, no team on call', now() + interval '1 hour')";
    assert_eq!(attempt(p, &w.claims(w.ca2), grant, &[w.org_a, w.p1, w.ca2]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.ca2), grant, &[w.org_a, w.p1, w.ca3]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.aa), grant, &[w.org_a, w.p1, w.aa]).await, Outcome::Denied);
}

#[tokio::test]
async fn audit_inbox_accepts_only_the_callers_own_events() {
    let db = TestDb::new().await;
    let w: World = fixture::build(&db.pool).await;
    let p = &db.pool;
    let ins = "INSERT INTO audit_inbox (org_id, actor_id, action, resource_type, outcome) VALUES ($1, $2, 'read', 'patient', 'success')";
    assert_eq!(attempt(p, &w.claims(w.ca1), ins, &[w.org_a, w.ca1]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.ca1), ins, &[w.org_a, w.ca2]).await, Outcome::Denied, "forged actor");
    assert_eq!(attempt(p, &w.claims(w.ca1), ins, &[w.org_b, w.ca1]).await, Outcome::Denied, "other org");
    let sys = "INSERT INTO audit_inbox (action, resource_type, outcome) VALUES ('login_failed', 'session', 'denied')";
    assert_eq!(attempt(p, &Claims::anonymous(None), sys, &[]).await, Outcome::Ok(1), "system ledger");
    assert_eq!(attempt(p, &Claims::anonymous(None), ins, &[w.org_a, w.ca1]).await, Outcome::Denied);
    // Nobody in the app may alter or remove what was recorded.
    for sql in ["UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log", "DELETE FROM audit_inbox"] {
        assert_eq!(attempt(p, &w.claims(w.ua), sql, &[]).await, Outcome::Denied, "{sql}");
    }
}
