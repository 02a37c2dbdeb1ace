//! The sign-in context ('auth') and the credential tables after the security review: 'auth'
//! without an account sees nothing, pinned to an account sees and changes only that account;
//! accounts are resolved through narrow SECURITY DEFINER look-ups; credential columns
//! (session lifetime, MFA flags, password hashes, counters, the patient ↔ account link) only
//! change in the safe direction and through the flows meant for them.

use custos::db::{self, Claims};
use uuid::Uuid;

use crate::common::TestDb;
use crate::fixture;
use crate::rls_matrix::{count, set, visible};
use crate::rls_writes::{Outcome, attempt};

const IDENTITY_TABLES: &[(&str, &str)] = &[
    ("users", "id"),
    ("sessions", "user_id"),
    ("mfa_credentials", "user_id"),
    ("recovery_codes", "user_id"),
    ("mfa_challenges", "user_id"),
    ("patient_invites", "patient_id"),
    ("organizations", "id"),
];

#[tokio::test]
async fn auth_without_an_account_sees_nothing_and_pinned_sees_one_account() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    sqlx::query(
        "INSERT INTO mfa_challenges (org_id, user_id, token_hash, expires_at) \
         SELECT org_id, id, gen_random_bytes(32), now() + interval '5 minutes' FROM users",
    )
    .execute(p)
    .await
    .unwrap();
    for (table, column) in IDENTITY_TABLES {
        assert!(visible(p, &Claims::auth(None), table, column).await.is_empty(), "unpinned auth sees {table}");
    }
    assert_eq!(count(p, &Claims::auth(None), "refresh_tokens").await, 0);
    let pinned = Claims::auth_for(w.pa1, w.org_a, None);
    for (table, column) in IDENTITY_TABLES {
        let want = match *table {
            "patient_invites" => set(&[]),
            "organizations" => set(&[w.org_a]),
            _ => set(&[w.pa1]),
        };
        assert_eq!(visible(p, &pinned, table, column).await, want, "pinned auth on {table}");
    }
    assert_eq!(count(p, &pinned, "refresh_tokens").await, 1);
    // A pinned context claiming the wrong org sees nothing.
    assert!(visible(p, &Claims::auth_for(w.pa1, w.org_b, None), "users", "id").await.is_empty());
}

#[tokio::test]
async fn auth_cannot_write_other_accounts_orgs_or_ledgers() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    let pinned = Claims::auth_for(w.pa1, w.org_a, None);
    let unpinned = Claims::auth(None);
    // Another account's password hash or status, a revoked session, an invite's target.
    for claims in [&pinned, &unpinned] {
        let sql = "UPDATE users SET password_hash = '$argon2id$attacker' WHERE id = $1";
        assert_eq!(attempt(p, claims, sql, &[w.aa]).await, Outcome::Ok(0));
        let sql = "UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL WHERE user_id = $1";
        assert_eq!(attempt(p, claims, sql, &[w.aa]).await, Outcome::Ok(0));
        let sql = "UPDATE patient_invites SET patient_id = $1";
        assert_eq!(attempt(p, claims, sql, &[w.p1]).await, Outcome::Ok(0));
        // No patient accounts without an invite, in any org.
        let sql = "INSERT INTO users (org_id, role, email_enc, email_bidx, password_hash) \
                   VALUES ($1, 'patient', '\\x00', gen_random_bytes(32), '$argon2id$x')";
        assert_eq!(attempt(p, claims, sql, &[w.org_b]).await, Outcome::Denied);
        assert_eq!(attempt(p, claims, sql, &[w.org_a]).await, Outcome::Denied);
        // No session for another account.
        let sql = "INSERT INTO sessions (org_id, user_id, mfa_verified, expires_at) \
                   VALUES ($1, $2, true, now() + interval '1 hour')";
        assert_eq!(attempt(p, claims, sql, &[w.org_a, w.aa]).await, Outcome::Denied);
        assert_eq!(attempt(p, claims, sql, &[w.org_b, w.ab]).await, Outcome::Denied);
    }
    // Audit events: the pinned org under no actor or itself; unpinned: the system ledger only.
    let ins = "INSERT INTO audit_inbox (org_id, actor_id, action, resource_type, outcome) \
               VALUES ($1, $2, 'login', 'session', 'success')";
    assert_eq!(attempt(p, &pinned, ins, &[w.org_a, w.pa1]).await, Outcome::Ok(1));
    assert_eq!(attempt(p, &pinned, ins, &[w.org_a, w.aa]).await, Outcome::Denied, "forged actor");
    assert_eq!(attempt(p, &pinned, ins, &[w.org_b, w.pa1]).await, Outcome::Denied, "other org");
    assert_eq!(attempt(p, &unpinned, ins, &[w.org_a, w.aa]).await, Outcome::Denied, "unpinned into an org");
    let sys = "INSERT INTO audit_inbox (action, resource_type, outcome) VALUES ('login_failed', 'user', 'denied')";
    assert_eq!(attempt(p, &unpinned, sys, &[]).await, Outcome::Ok(1));
}

/// name, owner, owner is superuser / bypasses RLS / can log in, SECURITY DEFINER, settings,
/// custos_app may execute, PUBLIC may execute.
type FnRow = (String, String, bool, bool, bool, bool, Option<Vec<String>>, bool, bool);

#[tokio::test]
async fn look_ups_are_narrow_definer_functions_of_unprivileged_roles() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    let funcs: Vec<FnRow> = sqlx::query_as(
        "SELECT f.proname::text, r.rolname::text, r.rolsuper, r.rolbypassrls, r.rolcanlogin, f.prosecdef, f.proconfig, \
                has_function_privilege('custos_app', f.oid, 'EXECUTE'), \
                EXISTS (SELECT 1 FROM aclexplode(f.proacl) a WHERE a.grantee = 0) \
         FROM pg_proc f JOIN pg_roles r ON r.oid = f.proowner \
         WHERE f.pronamespace = 'custos'::regnamespace AND f.prosecdef ORDER BY 1",
    )
    .fetch_all(p)
    .await
    .unwrap();
    let names: Vec<&str> = funcs.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "auth_user_by_email",
            "auth_user_by_mfa_challenge",
            "auth_user_by_passkey",
            "auth_user_by_refresh_token",
            "can_read_clinical",
            "can_write_clinical",
            "clinician_has_access",
            "enter_patient_scope",
            "events_among_patients",
            "imported_events",
            "invite_by_code",
            "invite_failed",
            "invite_issuer_client",
            "is_own_patient",
            "organization_id",
            "own_patient_ids",
            "patient_by_mrn",
            "patient_of_org",
            "redeem_invite",
            "rewrap_progress",
            "tile_checkpoint",
            "tile_hashes"
        ]
    );
    for (name, owner, sup, bypass, login, _, config, app_exec, public_exec) in &funcs {
        let expected = match name.as_str() {
            "can_read_clinical"
            | "can_write_clinical"
            | "clinician_has_access"
            | "is_own_patient"
            | "own_patient_ids"
            | "enter_patient_scope" => &["custos_access_check"][..],
            // Hashes and checkpoints of published ledgers (policies/65_ledger_tiles.sql).
            "tile_checkpoint" | "tile_hashes" => &["custos_ledger_owner"][..],
            // Imported legacy events, for `custos import verify` (policies/50_rls_audit.sql).
            "imported_events" => &["custos_ledger_owner"][..],
            // The console's patient filter over `patient_ids` (policies/50_rls_audit.sql).
            "events_among_patients" => &["custos_ledger_owner"][..],
            // The console's MRN look-up (ids only) and rewrap counts (policies/85_console.sql).
            // … and the auditor's by patient id (the API's access report).
            "patient_by_mrn" | "patient_of_org" => &["custos_invite_redeemer"][..],
            "rewrap_progress" => &["custos_rewrapper"][..],
            _ => &["custos_auth_lookup", "custos_invite_redeemer"][..],
        };
        assert!(expected.contains(&owner.as_str()), "{name} owned by {owner}");
        assert!(!sup && !bypass && !login, "{name}: owner must be an unprivileged NOLOGIN role");
        assert!(config.iter().flatten().any(|c| c.starts_with("search_path=")), "{name}: search_path pinned");
        assert!(*app_exec && !public_exec, "{name}: EXECUTE for custos_app only");
    }
    // The look-up answers just the ids, to the app role with no account claims.
    let bidx: Vec<u8> =
        sqlx::query_scalar("SELECT email_bidx FROM users WHERE id = $1").bind(w.ca1).fetch_one(p).await.unwrap();
    let mut tx = db::begin(p, &Claims::auth(None)).await.unwrap();
    let found: Option<(Uuid, Uuid)> = sqlx::query_as("SELECT * FROM custos.auth_user_by_email($1)")
        .bind(&bidx)
        .fetch_optional(&mut *tx)
        .await
        .unwrap();
    assert_eq!(found, Some((w.ca1, w.org_a)));
    let none: Option<(Uuid, Uuid)> = sqlx::query_as("SELECT * FROM custos.auth_user_by_email($1)")
        .bind(vec![0u8; 32])
        .fetch_optional(&mut *tx)
        .await
        .unwrap();
    assert_eq!(none, None);
}

#[tokio::test]
async fn credential_columns_change_only_in_the_safe_direction() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let p = &db.pool;
    let admin = w.claims(w.aa);
    let me = w.claims(w.ca1);
    // An admin cannot mint sessions for others or overwrite their credentials.
    let sql = "INSERT INTO sessions (org_id, user_id, mfa_verified, expires_at) VALUES ($1, $2, true, now() + interval '1 hour')";
    assert_eq!(attempt(p, &admin, sql, &[w.org_a, w.ca1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &me, sql, &[w.org_a, w.ca1]).await, Outcome::Denied, "nor for oneself");
    let sql = "UPDATE users SET password_hash = '$argon2id$admin-chosen' WHERE id = $1";
    assert_eq!(attempt(p, &admin, sql, &[w.ca1]).await, Outcome::Denied);
    let sql = "UPDATE users SET email_bidx = gen_random_bytes(32) WHERE id = $1";
    assert_eq!(attempt(p, &admin, sql, &[w.ca1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &me, sql, &[w.ca1]).await, Outcome::Denied);
    let sql = "UPDATE mfa_credentials SET secret_enc = '\\x01' WHERE user_id = $1";
    assert_eq!(attempt(p, &admin, sql, &[w.ca1]).await, Outcome::Ok(0));
    let sql = "INSERT INTO mfa_credentials (org_id, user_id, secret_enc) VALUES ($1, $2, '\\x01')";
    assert_eq!(attempt(p, &admin, sql, &[w.org_a, w.ua]).await, Outcome::Denied);
    // ...but still manages accounts: disable, unlock.
    sqlx::query("UPDATE users SET failed_attempts = 3, consecutive_failures = 40, locked_until = now() + interval '1 hour', must_change_password = true WHERE id = $1")
        .bind(w.ca1)
        .execute(p)
        .await
        .unwrap();
    let unlock = "UPDATE users SET failed_attempts = 0, consecutive_failures = 0, locked_until = NULL WHERE id = $1";
    assert_eq!(attempt(p, &admin, unlock, &[w.ca1]).await, Outcome::Ok(1));
    assert_eq!(
        attempt(p, &admin, "UPDATE users SET status = 'disabled' WHERE id = $1", &[w.ca1]).await,
        Outcome::Ok(1)
    );
    // A user cannot lift their own lock, counters or forced password change...
    assert_eq!(attempt(p, &me, unlock, &[w.ca1]).await, Outcome::Denied);
    let sql = "UPDATE users SET locked_until = NULL WHERE id = $1";
    assert_eq!(attempt(p, &me, sql, &[w.ca1]).await, Outcome::Denied);
    let sql = "UPDATE users SET must_change_password = false WHERE id = $1";
    assert_eq!(attempt(p, &me, sql, &[w.ca1]).await, Outcome::Denied);
    // ...only together with a new password.
    let sql = "UPDATE users SET must_change_password = false, password_hash = '$argon2id$new', password_changed_at = now() WHERE id = $1";
    assert_eq!(attempt(p, &me, sql, &[w.ca1]).await, Outcome::Ok(1));
    // Sessions: no longer life, no self-granted MFA, no un-revoking; revoking is fine.
    let sql = "UPDATE sessions SET expires_at = expires_at + interval '30 days' WHERE user_id = $1";
    assert_eq!(attempt(p, &me, sql, &[w.ca1]).await, Outcome::Denied);
    let sql = "UPDATE sessions SET mfa_verified = true WHERE user_id = $1";
    assert_eq!(attempt(p, &me, sql, &[w.ca1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &admin, sql, &[w.ca1]).await, Outcome::Denied);
    let pinned = Claims::auth_for(w.ca1, w.org_a, None);
    assert_eq!(attempt(p, &pinned, sql, &[w.ca1]).await, Outcome::Denied, "not without a confirmed factor");
    sqlx::query("UPDATE mfa_credentials SET confirmed_at = now() WHERE user_id = $1")
        .bind(w.ca1)
        .execute(p)
        .await
        .unwrap();
    assert_eq!(attempt(p, &pinned, sql, &[w.ca1]).await, Outcome::Ok(1), "the sign-in flow may");
    let revoke = "UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE user_id = $1";
    assert_eq!(attempt(p, &me, revoke, &[w.ca1]).await, Outcome::Ok(1));
    sqlx::query("UPDATE sessions SET revoked_at = now(), revoked_reason = 'x' WHERE user_id = $1")
        .bind(w.ca1)
        .execute(p)
        .await
        .unwrap();
    let unrevoke = "UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL WHERE user_id = $1";
    assert_eq!(attempt(p, &me, unrevoke, &[w.ca1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &admin, unrevoke, &[w.ca1]).await, Outcome::Denied);
    // The patient ↔ account link is made by redeeming an invite, not by staff.
    crate::common::rewrite_history(p, "UPDATE patients SET user_id = NULL WHERE id = $1", &[w.p1]).await;
    let link = "UPDATE patients SET user_id = $1 WHERE id = $2";
    assert_eq!(attempt(p, &admin, link, &[w.aa, w.p1]).await, Outcome::Denied);
    assert_eq!(attempt(p, &w.claims(w.ca1), link, &[w.ca1, w.p1]).await, Outcome::Denied);
}

#[tokio::test]
async fn refresh_tokens_cannot_point_at_another_orgs_session() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let sid: Uuid =
        sqlx::query_scalar("SELECT id FROM sessions WHERE user_id = $1").bind(w.pa1).fetch_one(&db.pool).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO refresh_tokens (org_id, session_id, token_hash, expires_at) \
         VALUES ($1, $2, gen_random_bytes(32), now() + interval '1 day')",
    )
    .bind(w.org_b)
    .bind(sid)
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("23503"), "composite FK");
}

#[tokio::test]
async fn conflict_answers_do_not_name_the_constraint() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let bidx: Vec<u8> =
        sqlx::query_scalar("SELECT email_bidx FROM users WHERE id = $1").bind(w.ca1).fetch_one(&db.pool).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO users (org_id, role, email_enc, email_bidx, password_hash) VALUES ($1, 'clinician', '\\x00', $2, '$x')",
    )
    .bind(w.org_a)
    .bind(&bidx)
    .execute(&db.pool)
    .await
    .unwrap_err();
    let api = custos::error::ApiError::from(err);
    let shown = api.to_string();
    assert_eq!(api.code(), "conflict");
    assert!(!shown.contains("users_org_id_email_bidx_key") && !shown.contains("bidx"), "{shown}");
}

/// The owner of the per-row access predicates reads the columns an access decision needs and
/// nothing else: no sealed demographics, no clinical table, no write.
#[tokio::test]
async fn the_access_check_role_reads_only_access_columns() {
    let db = TestDb::new().await;
    let _w = fixture::build(&db.pool).await;
    let as_checker = |sql: &'static str| {
        let pool = db.pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("SET LOCAL ROLE custos_access_check").execute(&mut *tx).await.unwrap();
            sqlx::query(sql).execute(&mut *tx).await.map(|_| ())
        }
    };
    for ok in [
        "SELECT id, org_id, user_id FROM patients",
        "SELECT org_id, patient_id, clinician_id FROM care_team_members",
        "SELECT org_id, patient_id, clinician_id, revoked_at, expires_at FROM break_glass_grants",
    ] {
        assert!(as_checker(ok).await.is_ok(), "{ok}");
    }
    for denied in [
        "SELECT given_name_enc FROM patients",
        "SELECT mrn_bidx FROM patients",
        "SELECT reason FROM break_glass_grants",
        "SELECT count(*) FROM allergies",
        "SELECT count(*) FROM users",
        "UPDATE care_team_members SET clinician_id = clinician_id",
        "DELETE FROM break_glass_grants",
    ] {
        let err = as_checker(denied).await.expect_err(denied);
        assert!(err.to_string().contains("permission denied"), "{denied}: {err}");
    }
}
