//! Guarantees read from the system catalog, so that a new table or role change that weakens
//! them fails the suite: the app role's powers, RLS on every data table.

use crate::common::TestDb;

#[tokio::test]
async fn app_roles_are_unprivileged_and_own_nothing() {
    let db = TestDb::new().await;
    for role in ["custos_app", "custos_sequencer", "custos_auditor"] {
        let (superuser, bypass, createrole, createdb): (bool, bool, bool, bool) = sqlx::query_as(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1",
        )
        .bind(role)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert!(!superuser && !bypass && !createrole && !createdb, "{role} must be unprivileged");
        let owned: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid) \
                  + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid) \
                  + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid) \
                  + (SELECT count(*) FROM pg_type WHERE typowner = r.oid) \
             FROM pg_roles r WHERE r.rolname = $1",
        )
        .bind(role)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(owned, 0, "{role} must own nothing");
    }
    // The ledger tables belong to a role nobody can log in as.
    let owners: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, r.rolname::text, r.rolcanlogin FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner \
         WHERE c.relname IN ('audit_log', 'audit_checkpoints') AND c.relnamespace = 'public'::regnamespace",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(owners.len(), 2);
    for (table, owner, can_login) in owners {
        assert_eq!(owner, "custos_ledger_owner", "{table}");
        assert!(!can_login, "{table} owner must be NOLOGIN");
    }
}

#[tokio::test]
async fn every_table_with_org_id_has_forced_rls() {
    let db = TestDb::new().await;
    let rows: Vec<(String, bool, bool, bool, i64)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped), \
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) \
         FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') \
           AND c.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(rows.len() >= 24, "the whole schema is there ({} tables)", rows.len());
    let mut with_org = 0;
    for (table, enabled, forced, has_org, policies) in &rows {
        // Every table of ours holds patient, user, audit or key data: all must be guarded,
        // and a table with org_id most of all.
        assert!(*enabled && *forced, "{table}: RLS must be enabled and forced");
        assert!(*policies > 0, "{table}: RLS without policies hides everything; add policies");
        with_org += usize::from(*has_org);
    }
    assert!(with_org >= 20, "org_id on every row holding patient or user data ({with_org})");
    // Spot-check the claim of DESIGN.md: with no claims a query sees nothing.
    let names: Vec<&str> = rows.iter().filter(|r| r.3).map(|r| r.0.as_str()).collect();
    for expected in
        ["users", "patients", "allergies", "prescriptions", "messages", "audit_log", "sessions", "legacy_id_map"]
    {
        assert!(names.contains(&expected), "{expected} carries org_id");
    }
}

#[tokio::test]
async fn every_foreign_key_is_indexed() {
    let db = TestDb::new().await;
    // A foreign key whose leading columns are not the leading columns of some index.
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT c.conrelid::regclass::text || '(' || c.conname || ')' FROM pg_constraint c \
         WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace AND NOT EXISTS ( \
             SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid \
               AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey \
               AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(missing.is_empty(), "foreign keys without an index: {missing:?}");
}
