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

// $3 is the author: it must be the caller.
const INSERT_ALLERGY: &str =
    "INSERT INTO allergies (org_id, patient_id, recorded_by, substance, severity) VALUES ($1, $2, $3, 'latex', 'mild')";
const INSERT_HISTORY: &str = "INSERT INTO medical_history (org_id, patient_id, recorded_by, icd10_code, diagnosed_on) \
    VALUES ($1, $2, $3, 'I10', '2024-02-02')";
const INSERT_CONVERSATION: &str =
    "INSERT INTO conversations (org_id, patient_id, opened_by, subject_enc) VALUES ($1, $2, $3, '\\x00')";
const INSERT_PRESCRIPTION: &str = "INSERT INTO prescriptions (org_id, patient_id, prescriber_id, medication, dose, quantity, refills_allowed, expires_at) \
    VALUES ($1, $2, $3, 'lisinopril', '10 mg', 30, 1, now() + interval '1 month')";
const UPDATE_ALLERGIES: &str = "UPDATE allergies SET severity = 'mild' WHERE patient_id = $1";

#[tokio::test]
async fn clinician_writes_need_care_team_or_live_break_glass() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    for sql in [INSERT_ALLERGY, INSERT_HISTORY] {
        let as_self = |who: Uuid, org: Uuid, patient: Uuid| [org, patient, who];
        assert_eq!(
            attempt(p, &w.claims(w.ca1), sql, &as_self(w.ca1, w.org_a, w.p1)).await,
            Outcome::Ok(1),
            "care team"
        );
        assert_eq!(
            attempt(p, &w.claims(w.ca2), sql, &as_self(w.ca2, w.org_a, w.p2)).await,
            Outcome::Ok(1),
            "break-glass"
        );
        assert_eq!(
            attempt(p, &w.claims(w.ca2), sql, &as_self(w.ca2, w.org_a, w.p1)).await,
            Outcome::Denied,
            "no relation"
        );
        assert_eq!(
            attempt(p, &w.claims(w.ca3), sql, &as_self(w.ca3, w.org_a, w.p1)).await,
            Outcome::Denied,
            "expired grant"
        );
        assert_eq!(attempt(p, &w.claims(w.aa), sql, &as_self(w.aa, w.org_a, w.p1)).await, Outcome::Denied, "admin");
        assert_eq!(attempt(p, &w.claims(w.ua), sql, &as_self(w.ua, w.org_a, w.p1)).await, Outcome::Denied, "auditor");
        assert_eq!(attempt(p, &w.claims(w.pa1), sql, &as_self(w.pa1, w.org_a, w.p1)).await, Outcome::Denied, "patient");
        // In a colleague's name: refused even for the care team.
        assert_eq!(
            attempt(p, &w.claims(w.ca1), sql, &as_self(w.ca2, w.org_a, w.p1)).await,
            Outcome::Denied,
            "authorship"
        );
        // Cross-organization: claiming the other org's id or pointing at its patient fails.
        assert_eq!(
            attempt(p, &w.claims(w.cb), sql, &as_self(w.cb, w.org_a, w.p1)).await,
            Outcome::Denied,
            "org B into A"
        );
        assert_eq!(
            attempt(p, &w.claims(w.ca1), sql, &as_self(w.ca1, w.org_b, w.p3)).await,
            Outcome::Denied,
            "org A into B"
        );
        let anon = Claims::anonymous(None);
        assert_eq!(attempt(p, &anon, sql, &as_self(w.ca1, w.org_a, w.p1)).await, Outcome::Denied, "no claims");
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
    assert_eq!(attempt(p, &w.claims(w.pa1), INSERT_CONVERSATION, &[w.org_a, w.p1, w.pa1]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &w.claims(w.pa1), INSERT_CONVERSATION, &[w.org_a, w.p2, w.pa1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.pa1), INSERT_CONVERSATION, &[w.org_a, w.p1, w.ca1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.aa), INSERT_CONVERSATION, &[w.org_a, w.p1, w.aa]).await, Outcome::Denied);
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
async fn audit_inbox_accepts_only_the_callers_own_live_events() {
    use custos::audit::{self, Action, AuditContext, AuditEvent, Outcome as Out};
    let db = TestDb::new().await;
    let w: World = fixture::build(&db.pool).await;
    let p = &db.pool;
    // The real writer, with the caller's own context, is accepted.
    for who in [w.ca1, w.pa1, w.aa, w.ua] {
        let claims = w.claims(who);
        let mut tx = db::begin(p, &claims).await.unwrap();
        let event = AuditEvent::new(Action::Read, "patient", Out::Success).patient(w.p1);
        audit::record(&mut tx, &AuditContext::from_claims(&claims), &event).await.unwrap();
        tx.rollback().await.unwrap();
    }
    // Forgeries, each differing from a valid event in one field.
    let forge = |claims: &Claims,
                 org: Uuid,
                 actor: Uuid,
                 role: &'static str,
                 extra: &'static str,
                 patient: Option<Uuid>| {
        let (claims, pool) = (*claims, p.clone());
        async move {
            let mut tx = db::begin(&pool, &claims).await.unwrap();
            let sql = format!(
                "INSERT INTO audit_inbox (org_id, actor_id, actor_role, request_id, patient_id, action, resource_type, \
                 outcome, imported, occurred_at) VALUES ($1, $2, $3, $4, $5, 'read', 'patient', 'success', {extra})"
            );
            let res = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(org)
                .bind(actor)
                .bind(role)
                .bind(claims.request_id)
                .bind(patient)
                .execute(&mut *tx)
                .await;
            tx.rollback().await.unwrap();
            match res {
                Ok(_) => Outcome::Ok(1),
                Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42501") => Outcome::Denied,
                Err(e) => panic!("{e}"),
            }
        }
    };
    let live = "false, clock_timestamp()";
    let c = w.claims(w.ca1);
    assert_eq!(forge(&c, w.org_a, w.ca1, "clinician", live, Some(w.p1)).await, Outcome::Ok(1), "baseline");
    assert_eq!(forge(&c, w.org_a, w.ca2, "clinician", live, None).await, Outcome::Denied, "another actor");
    assert_eq!(forge(&c, w.org_b, w.ca1, "clinician", live, None).await, Outcome::Denied, "another org");
    assert_eq!(forge(&c, w.org_a, w.ca1, "admin", live, None).await, Outcome::Denied, "another role");
    assert_eq!(
        forge(&c, w.org_a, w.ca1, "clinician", "true, clock_timestamp()", None).await,
        Outcome::Denied,
        "imported"
    );
    assert_eq!(
        forge(&c, w.org_a, w.ca1, "clinician", "false, now() - interval '1 day'", None).await,
        Outcome::Denied,
        "backdated"
    );
    let pc = w.claims(w.pa1);
    assert_eq!(forge(&pc, w.org_a, w.pa1, "patient", live, Some(w.p1)).await, Outcome::Ok(1), "patient baseline");
    assert_eq!(forge(&pc, w.org_a, w.pa1, "patient", live, Some(w.p2)).await, Outcome::Denied, "about another patient");
    // ...except the record of their own refused attempt on it.
    let mut tx = db::begin(p, &pc).await.unwrap();
    let denied = AuditEvent::new(Action::Read, "patient", Out::Denied).patient(w.p2);
    audit::record(&mut tx, &AuditContext::from_claims(&pc), &denied).await.unwrap();
    tx.rollback().await.unwrap();
    let sys = "INSERT INTO audit_inbox (action, resource_type, outcome) VALUES ('login_failed', 'session', 'denied')";
    assert_eq!(attempt(p, &Claims::anonymous(None), sys, &[]).await, Outcome::Ok(1), "system ledger");
    let ins = "INSERT INTO audit_inbox (org_id, actor_id, action, resource_type, outcome) VALUES ($1, $2, 'read', 'patient', 'success')";
    assert_eq!(attempt(p, &Claims::anonymous(None), ins, &[w.org_a, w.ca1]).await, Outcome::Denied);
    // Nobody in the app may alter or remove what was recorded.
    for sql in ["UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log", "DELETE FROM audit_inbox"] {
        assert_eq!(attempt(p, &w.claims(w.ua), sql, &[]).await, Outcome::Denied, "{sql}");
    }
}

#[tokio::test]
async fn break_glass_grants_are_short_lived_and_only_revocable() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    let grant = |interval: &'static str| -> &'static str {
        match interval {
            "now" => {
                "INSERT INTO break_glass_grants (org_id, patient_id, clinician_id, reason, expires_at) \
                VALUES ($1, $2, $3, 'patient arrived unconscious, no team on call', now() + interval '1 hour')"
            }
            "future" => {
                "INSERT INTO break_glass_grants (org_id, patient_id, clinician_id, reason, granted_at, expires_at) \
                VALUES ($1, $2, $3, 'patient arrived unconscious, no team on call', now() + interval '10 years', \
                now() + interval '10 years 1 hour')"
            }
            _ => {
                "INSERT INTO break_glass_grants (org_id, patient_id, clinician_id, reason, expires_at) \
                VALUES ($1, $2, $3, 'patient arrived unconscious, no team on call', now() + interval '25 hours')"
            }
        }
    };
    let c2 = w.claims(w.ca2);
    assert_eq!(attempt(p, &c2, grant("now"), &[w.org_a, w.p1, w.ca2]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &c2, grant("future"), &[w.org_a, w.p1, w.ca2]).await, Outcome::Denied, "dated ahead");
    assert_eq!(attempt(p, &c2, grant("long"), &[w.org_a, w.p1, w.ca2]).await, Outcome::Denied, "over 24 h");
    // ca2's live grant on P2: revoking works; extending, re-targeting or reviving does not.
    let revoke = "UPDATE break_glass_grants SET revoked_at = now() WHERE clinician_id = $1 AND patient_id = $2";
    assert_eq!(attempt(p, &c2, revoke, &[w.ca2, w.p2]).await, Outcome::Ok(1));
    let extend = "UPDATE break_glass_grants SET expires_at = expires_at + interval '1 hour' WHERE clinician_id = $1 AND patient_id = $2";
    assert_eq!(attempt(p, &c2, extend, &[w.ca2, w.p2]).await, Outcome::Denied);
    let retarget = "UPDATE break_glass_grants SET patient_id = $2, revoked_at = now() WHERE clinician_id = $1";
    assert_eq!(attempt(p, &c2, retarget, &[w.ca2, w.p1]).await, Outcome::Denied);
    // ca3's grant has expired: it cannot be brought back either.
    let revive = "UPDATE break_glass_grants SET expires_at = now() + interval '1 hour' WHERE clinician_id = $1 AND patient_id = $2";
    assert_eq!(attempt(p, &w.claims(w.ca3), revive, &[w.ca3, w.p1]).await, Outcome::Denied);
}

#[tokio::test]
async fn identity_and_authorship_columns_are_frozen() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    let c1 = w.claims(w.ca1);
    // Claiming to have created a patient (which would grant the creator's sight) is refused.
    let claim_creator = "UPDATE patients SET created_by = $1 WHERE id = $2";
    assert_eq!(attempt(p, &c1, claim_creator, &[w.ca1, w.p1]).await, Outcome::Denied);
    // A row cannot be moved to another patient, nor a prescription's drug changed after issue.
    let move_row = "UPDATE allergies SET patient_id = $2 WHERE patient_id = $1";
    assert_eq!(attempt(p, &c1, move_row, &[w.p1, w.p2]).await, Outcome::Denied);
    let change_drug = "UPDATE prescriptions SET medication = 'oxycodone' WHERE patient_id = $1";
    assert_eq!(attempt(p, &c1, change_drug, &[w.p1]).await, Outcome::Denied);
    let refill = "UPDATE prescriptions SET refills_used = refills_used + 1 WHERE patient_id = $1";
    assert_eq!(attempt(p, &c1, refill, &[w.p1]).await, Outcome::Ok(1), "state changes stay possible");
    // A portal account, once linked, is never re-pointed.
    let relink = "UPDATE patients SET user_id = $1 WHERE id = $2";
    assert_eq!(attempt(p, &w.claims(w.aa), relink, &[w.pa2, w.p1]).await, Outcome::Denied);
    // Attachments and symptoms are append-only, even for the patient who uploaded them.
    let edit = "UPDATE attachments SET content_type = 'text/plain' WHERE patient_id = $1";
    assert_eq!(attempt(p, &w.claims(w.pa1), edit, &[w.p1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &c1, edit, &[w.p1]).await, Outcome::Denied);
}

#[tokio::test]
async fn a_creator_sees_a_new_patient_only_within_its_creating_transaction() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let claims = w.claims(w.ca2); // on no care team
    let pid = Uuid::new_v4();
    let mut tx = db::begin(&db.pool, &claims).await.unwrap();
    sqlx::query(
        "INSERT INTO patients (id, org_id, created_by, mrn_enc, mrn_bidx, given_name_enc, family_name_enc, birth_date_enc) \
         VALUES ($1, $2, $3, '\\x00', gen_random_bytes(32), '\\x00', '\\x00', '\\x00')",
    )
    .bind(pid)
    .bind(w.org_a)
    .bind(w.ca2)
    .execute(&mut *tx)
    .await
    .unwrap();
    let seen: i64 =
        sqlx::query_scalar("SELECT count(*) FROM patients WHERE id = $1").bind(pid).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(seen, 1, "the creator sees the row in its own transaction");
    tx.commit().await.unwrap();
    let mut tx = db::begin(&db.pool, &claims).await.unwrap();
    let seen: i64 =
        sqlx::query_scalar("SELECT count(*) FROM patients WHERE id = $1").bind(pid).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(seen, 0, "afterwards only the care team sees it");
    let join = "INSERT INTO care_team_members (org_id, patient_id, clinician_id) VALUES ($1, $2, $3)";
    let res = sqlx::query(join).bind(w.org_a).bind(pid).bind(w.ca2).execute(&mut *tx).await;
    assert!(res.is_err(), "and the creator cannot join its care team later");
}
