//! With no reachable server, Custos starts a private cluster from the system's PostgreSQL
//! binaries. Exercised directly (the machine's own server stays up for the other tests).

use secrecy::ExposeSecret;

#[tokio::test]
async fn a_private_cluster_starts_and_serves_a_migrated_database() {
    let dir = std::env::temp_dir().join(format!("custos-pg-{}", uuid::Uuid::new_v4().simple()));
    let url = custos::db::locate::start_private_cluster(&dir).await;
    let result = async {
        let url = url.map_err(|e| e.to_string())?;
        assert!(url.expose_secret().contains(&custos::db::locate::PRIVATE_PORT.to_string()));
        let pool = custos::db::connect(&url, 2).await.map_err(|e| e.to_string())?;
        custos::db::migrate::run(&pool).await.map_err(|e| e.to_string())?;
        let ready = custos::db::migrate::status(&pool).await.map_err(|e| e.to_string())?.ready();
        pool.close().await;
        // A second start finds it running and reuses it.
        let again = custos::db::locate::start_private_cluster(&dir).await.map_err(|e| e.to_string())?;
        assert_eq!(again.expose_secret(), url.expose_secret());
        Ok::<bool, String>(ready)
    }
    .await;
    let stopped = custos::db::locate::stop_private_cluster(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(result, Ok(true));
    assert!(stopped.is_ok(), "{stopped:?}");
}
