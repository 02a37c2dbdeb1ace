//! The read side of the RLS matrix: for every protected table and every kind of caller,
//! exactly which rows the database shows to `custos_app` with those claims. The expectations
//! are written out by hand from DESIGN.md's role table, not computed from the policies.

use std::collections::BTreeSet;

use custos::db::{self, Claims};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::TestDb;
use crate::fixture::{self, CLINICAL_TABLES, World};

/// The set of values of `column` in `table` visible under `claims`.
pub(crate) async fn visible(pool: &PgPool, claims: &Claims, table: &str, column: &str) -> BTreeSet<Uuid> {
    let mut tx = db::begin(pool, claims).await.unwrap();
    let sql = format!("SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL");
    let rows: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
    tx.rollback().await.unwrap();
    rows.into_iter().collect()
}

pub(crate) async fn count(pool: &PgPool, claims: &Claims, table: &str) -> i64 {
    let mut tx = db::begin(pool, claims).await.unwrap();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
    tx.rollback().await.unwrap();
    n
}

pub(crate) fn set(ids: &[Uuid]) -> BTreeSet<Uuid> {
    ids.iter().copied().collect()
}

/// Checks one table/column for every actor against `expected(actor) -> ids`, plus the
/// anonymous (no claims) caller who must always see nothing.
async fn check(pool: &PgPool, w: &World, table: &str, column: &str, expected: impl Fn(Uuid) -> Vec<Uuid>) {
    let mut failures = Vec::new();
    for actor in w.actors() {
        let got = visible(pool, &w.claims(actor), table, column).await;
        let want = set(&expected(actor));
        if got != want {
            failures.push(format!(
                "{table}.{column} as {}: got {} rows, want {}",
                w.name(actor),
                got.len(),
                want.len()
            ));
        }
    }
    let anon = visible(pool, &Claims::anonymous(None), table, column).await;
    if !anon.is_empty() {
        failures.push(format!("{table}: no claims must see nothing, saw {}", anon.len()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whose clinical rows each actor may read.
fn clinical_expected(w: &World, a: Uuid) -> Vec<Uuid> {
    match a {
        a if a == w.pa1 => vec![w.p1],             // own record only
        a if a == w.pa2 => vec![w.p2],             // not P1: other patient, same org
        a if a == w.ca1 => vec![w.p1, w.p2],       // care team
        a if a == w.ca2 => vec![w.p2],             // live break-glass only
        a if a == w.ca3 => vec![],                 // expired break-glass
        a if a == w.pb || a == w.cb => vec![w.p3], // org B sees org B only
        _ => vec![],                               // admins and auditors: no clinical content
    }
}

#[tokio::test]
async fn clinical_tables_follow_care_team_break_glass_and_org() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    for table in CLINICAL_TABLES {
        check(&db.pool, &w, table, "patient_id", |a| clinical_expected(&w, a)).await;
    }
}

/// A transaction scoped to one patient (requests under /v1/patients/{id}/…) sees exactly
/// what the caller could see anyway, intersected with that patient: the scope narrows and
/// never grants — not for another patient of the same org, nor one in another org.
#[tokio::test]
async fn a_patient_scope_narrows_and_never_grants() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let mut failures = Vec::new();
    for table in CLINICAL_TABLES {
        for actor in w.actors() {
            for scope in [w.p1, w.p2, w.p3] {
                let got = visible(&db.pool, &w.claims(actor).scoped_to(scope), table, "patient_id").await;
                let want: BTreeSet<Uuid> = clinical_expected(&w, actor).into_iter().filter(|p| *p == scope).collect();
                if got != want {
                    failures
                        .push(format!("{table} as {} scoped to {scope}: got {got:?}, want {want:?}", w.name(actor)));
                }
            }
        }
        if *table == CLINICAL_TABLES[0] {
            // Demographics are not narrowed by the scope; the remembered answer must not
            // widen them either.
            for actor in w.actors() {
                for scope in [w.p1, w.p2, w.p3] {
                    let got = visible(&db.pool, &w.claims(actor).scoped_to(scope), "patients", "id").await;
                    if got != set(&patients_expected(&w, actor)) {
                        failures.push(format!("patients as {} scoped to {scope}: got {got:?}", w.name(actor)));
                    }
                }
            }
        }
        let anon = visible(&db.pool, &Claims::anonymous(None).scoped_to(w.p1), table, "patient_id").await;
        if !anon.is_empty() {
            failures.push(format!("{table}: no claims, scoped, must see nothing"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Which patient records each actor sees (demographics).
fn patients_expected(w: &World, a: Uuid) -> Vec<Uuid> {
    match a {
        a if a == w.pa1 => vec![w.p1],
        a if a == w.pa2 => vec![w.p2],
        a if a == w.ca1 => vec![w.p1, w.p2],
        a if a == w.ca2 => vec![w.p2],
        a if a == w.aa => vec![w.p1, w.p2], // demographics for the org's admin
        a if a == w.pb || a == w.cb || a == w.ab => vec![w.p3],
        _ => vec![],
    }
}

/// The access answer a scoped transaction remembers (`custos.scope_grant`) is tied to the
/// exact claims it was given for: change the user (or the scope) inside the transaction and
/// the policies ask again — a clinician off the care team sees nothing through a colleague's
/// answer, and one on it is not refused because an earlier answer was "no".
#[tokio::test]
async fn a_remembered_scope_answer_does_not_outlive_its_claims() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let seen = async |tx: &mut sqlx::PgConnection| -> (i64, i64) {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM allergies").fetch_one(&mut *tx).await.unwrap();
        let chart: i64 = sqlx::query_scalar("SELECT count(*) FROM patients WHERE id = custos.patient_scope()")
            .fetch_one(tx)
            .await
            .unwrap();
        (rows, chart)
    };
    let switch_user = async |tx: &mut sqlx::PgConnection, user: Uuid| {
        sqlx::query("SELECT set_config('custos.user_id', $1, true)").bind(user.to_string()).execute(tx).await.unwrap();
    };
    let on_team = |c: Uuid| clinical_expected(&w, c).contains(&w.p1);
    assert!(on_team(w.ca1) && !on_team(w.ca2), "fixture: ca1 treats p1, ca2 does not");

    // Entered as ca1 (yes), then the claims say ca2: nothing.
    let mut tx = db::begin(&db.pool, &w.claims(w.ca1).scoped_to(w.p1)).await.unwrap();
    let granted: String =
        sqlx::query_scalar("SELECT current_setting('custos.scope_grant')").fetch_one(&mut *tx).await.unwrap();
    assert!(granted.starts_with(&w.p1.to_string()), "a yes is remembered for these claims: {granted}");
    let (rows, chart) = seen(&mut tx).await;
    assert!(rows > 0 && chart == 1, "ca1 reads p1's chart: {rows} allergies, {chart} record");
    switch_user(&mut tx, w.ca2).await;
    assert_eq!(seen(&mut tx).await, (0, 0), "ca2 must not read through ca1's remembered answer");
    tx.rollback().await.unwrap();

    // Entered as ca2 (no), then the claims say ca1: asked again, and allowed.
    let mut tx = db::begin(&db.pool, &w.claims(w.ca2).scoped_to(w.p1)).await.unwrap();
    assert_eq!(seen(&mut tx).await, (0, 0), "ca2 is off p1's care team");
    switch_user(&mut tx, w.ca1).await;
    let (rows, chart) = seen(&mut tx).await;
    assert!(rows > 0 && chart == 1, "ca1 is asked afresh: {rows} allergies, {chart} record");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn patients_care_teams_grants_and_invites() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    check(&db.pool, &w, "patients", "id", |a| patients_expected(&w, a)).await;
    check(&db.pool, &w, "care_team_members", "patient_id", |a| match a {
        a if a == w.pa1 => vec![w.p1],
        a if a == w.pa2 => vec![w.p2],
        a if a == w.ca1 || a == w.aa => vec![w.p1, w.p2],
        a if a == w.pb || a == w.cb || a == w.ab => vec![w.p3],
        _ => vec![],
    })
    .await;
    check(&db.pool, &w, "break_glass_grants", "patient_id", |a| match a {
        a if a == w.ca2 => vec![w.p2],
        a if a == w.ca3 => vec![w.p1],
        // Auditors read grants (reasons through an audited route); patients the grants into
        // their own record (issue 19: the access report shows who broke the glass and why).
        a if a == w.aa || a == w.ua => vec![w.p1, w.p2],
        a if a == w.pa1 => vec![w.p1],
        a if a == w.pa2 => vec![w.p2],
        _ => vec![],
    })
    .await;
    check(&db.pool, &w, "patient_invites", "patient_id", |a| match a {
        a if a == w.ca1 || a == w.aa => vec![w.p1, w.p2],
        a if a == w.ca2 => vec![w.p2],
        a if a == w.cb || a == w.ab => vec![w.p3],
        _ => vec![],
    })
    .await;
}

#[tokio::test]
async fn identity_tables_show_self_or_own_org_to_admins() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    let org_a_users = vec![w.pa1, w.pa2, w.ca1, w.ca2, w.ca3, w.aa, w.ua];
    let org_b_users = vec![w.pb, w.cb, w.ab];
    let expected = |a: Uuid| {
        if a == w.aa {
            org_a_users.clone()
        } else if a == w.ab {
            org_b_users.clone()
        } else {
            vec![a]
        }
    };
    check(&db.pool, &w, "users", "id", expected).await;
    for table in ["sessions", "mfa_credentials", "recovery_codes"] {
        check(&db.pool, &w, table, "user_id", expected).await;
    }
    check(
        &db.pool,
        &w,
        "organizations",
        "id",
        |a| if org_b_users.contains(&a) { vec![w.org_b] } else { vec![w.org_a] },
    )
    .await;
    for actor in w.actors() {
        let n = count(&db.pool, &w.claims(actor), "refresh_tokens").await;
        let want = expected(actor).len() as i64;
        assert_eq!(n, want, "refresh_tokens as {}", w.name(actor));
    }
    assert_eq!(count(&db.pool, &Claims::anonymous(None), "refresh_tokens").await, 0);
    // legacy_id_map is for maintenance commands only.
    check(&db.pool, &w, "legacy_id_map", "new_id", |_| vec![]).await;
    assert_eq!(visible(&db.pool, &Claims::system(Some(w.org_a)), "legacy_id_map", "new_id").await, set(&[w.pa1]));
    assert!(visible(&db.pool, &Claims::system(Some(w.org_b)), "legacy_id_map", "new_id").await.is_empty());
}

#[tokio::test]
async fn service_contexts_are_confined() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    // Pre-authentication with no account resolved yet: nothing at all (accounts are found
    // through the narrow look-up functions only; see rls_auth.rs).
    let auth = Claims::auth(None);
    assert!(visible(&db.pool, &auth, "users", "id").await.is_empty());
    for table in CLINICAL_TABLES.iter().chain(["patients", "audit_log"].iter()) {
        assert!(visible(&db.pool, &auth, table, "org_id").await.is_empty(), "auth context sees {table}");
    }
    // A maintenance command for org A sees org A only.
    let system_a = Claims::system(Some(w.org_a));
    assert_eq!(visible(&db.pool, &system_a, "patients", "id").await, set(&[w.p1, w.p2]));
    assert_eq!(visible(&db.pool, &system_a, "allergies", "patient_id").await, set(&[w.p1, w.p2]));
    assert!(visible(&db.pool, &Claims::system(None), "patients", "id").await.is_empty());
}

#[tokio::test]
async fn audit_tables_for_auditors_admins_and_the_patient_concerned() {
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    // org A has 3 events (P1, P2, none), org B one (P3).
    for (actor, want) in [
        (w.ua, 3),  // auditor: whole org ledger
        (w.aa, 3),  // admin: own org's log
        (w.pa1, 1), // patient: events about P1 (accounting of disclosures)
        (w.pa2, 1),
        (w.ca1, 0), // clinicians do not read the ledger
        (w.ca2, 0),
        (w.pb, 1),
        (w.cb, 0),
        (w.ab, 1),
    ] {
        assert_eq!(count(&db.pool, &w.claims(actor), "audit_log").await, want, "audit_log as {}", w.name(actor));
    }
    assert_eq!(count(&db.pool, &Claims::anonymous(None), "audit_log").await, 0);
    assert_eq!(visible(&db.pool, &w.claims(w.pa1), "audit_log", "patient_id").await, set(&[w.p1]));
    for (actor, want) in [(w.ua, 3), (w.aa, 3), (w.ab, 1), (w.pa1, 0), (w.ca1, 0)] {
        assert_eq!(
            count(&db.pool, &w.claims(actor), "audit_checkpoints").await,
            want,
            "checkpoints as {}",
            w.name(actor)
        );
    }
    // The inbox is write-only for the app, whoever asks.
    for claims in [w.claims(w.ua), w.claims(w.aa), Claims::system(Some(w.org_a))] {
        let mut tx = db::begin(&db.pool, &claims).await.unwrap();
        let err = sqlx::query("SELECT count(*) FROM audit_inbox").fetch_one(&mut *tx).await.unwrap_err();
        assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"));
    }
}

#[tokio::test]
async fn superuser_fixture_is_complete() {
    // Guards the matrix against passing vacuously: the rows exist, RLS is what hides them.
    let db = TestDb::new().await;
    let w = fixture::build(&db.pool).await;
    for table in CLINICAL_TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(DISTINCT patient_id) FROM {table}")))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 3, "{table}");
    }
    let _ = w.patient_name(w.p1);
}
