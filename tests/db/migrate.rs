//! `custos migrate` is idempotent: a second run leaves the catalog exactly as the first did.

use crate::common::TestDb;

/// Policies, grants, RLS flags, roles, trigger modes and table owners, as one sorted text.
async fn snapshot(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT 'policy ' || tablename || ' ' || policyname || ' ' || cmd || ' ' || array_to_string(roles, ',') \
                || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '') FROM pg_policies WHERE schemaname = 'public' \
         UNION ALL SELECT 'grant ' || table_name || ' ' || grantee || ' ' || privilege_type \
                FROM information_schema.role_table_grants WHERE table_schema = 'public' \
         UNION ALL SELECT 'colgrant ' || table_name || '.' || column_name || ' ' || grantee || ' ' || privilege_type \
                FROM information_schema.column_privileges WHERE table_schema = 'public' AND grantee LIKE 'custos%' \
         UNION ALL SELECT 'rls ' || relname || ' ' || relrowsecurity || relforcerowsecurity || ' ' || relowner::regrole::text \
                FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' \
         UNION ALL SELECT 'trigger ' || tgname || ' ' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal \
         UNION ALL SELECT 'migration ' || version || ' ' || success FROM _sqlx_migrations \
         UNION ALL SELECT 'policy_state ' || encode(digest, 'hex') || ' ' || applied_at FROM custos.policy_state \
         ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn running_migrate_twice_changes_nothing() {
    let db = TestDb::new().await; // first run
    let first = snapshot(&db).await;
    assert!(first.iter().any(|l| l.starts_with("policy patients ")));
    custos::db::migrate::run(&db.pool).await.unwrap();
    let second = snapshot(&db).await;
    assert_eq!(first, second);
    let status = custos::db::migrate::status(&db.pool).await.unwrap();
    assert!(status.ready(), "{status:?}");
}

#[tokio::test]
async fn status_reports_an_unmigrated_database() {
    let db = TestDb::empty().await;
    let status = custos::db::migrate::status(&db.pool).await.unwrap();
    assert!(!status.ready());
    assert!(status.migrations_pending >= 4);
    assert!(!status.policies_current);
}
