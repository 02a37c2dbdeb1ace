//! Start-up migration does not re-apply unchanged policies (which would take exclusive
//! locks on every table under live traffic), but does apply changed ones.

use crate::common::TestDb;

#[tokio::test]
async fn startup_reapplies_policies_only_when_they_changed() {
    let db = TestDb::new().await;
    let applied = || async {
        sqlx::query_as::<_, (Vec<u8>, chrono::DateTime<chrono::Utc>)>(
            "SELECT digest, applied_at FROM custos.policy_state",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    let before = applied().await;
    custos::db::migrate::run_startup(&db.pool).await.unwrap();
    assert_eq!(applied().await, before, "unchanged policies are left alone");
    sqlx::query("UPDATE custos.policy_state SET digest = sha256('an older build')").execute(&db.pool).await.unwrap();
    custos::db::migrate::run_startup(&db.pool).await.unwrap();
    let after = applied().await;
    assert_eq!(after.0, custos::db::migrate::policy_digest().to_vec());
    assert!(after.1 > before.1, "changed policies are applied");
}
