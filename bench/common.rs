//! A throw-away database per benchmark run (dropped at the end).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

pub struct BenchDb {
    pub name: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl BenchDb {
    pub async fn new(max_connections: u32) -> Self {
        let url = std::env::var("CUSTOS_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let admin: PgConnectOptions = url.parse().unwrap();
        let name = format!("custos_bench_{}", uuid::Uuid::new_v4().simple());
        let mut c = PgConnection::connect_with(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
        c.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(admin.clone().database(&name))
            .await
            .unwrap();
        custos::db::migrate::run(&pool).await.unwrap();
        Self { name, pool, admin }
    }

    pub async fn org(&self) -> uuid::Uuid {
        sqlx::query_scalar("INSERT INTO organizations (name) VALUES ('Bench Hospital') RETURNING id")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn drop(self) {
        self.pool.close().await;
        let mut c = PgConnection::connect_with(&self.admin).await.unwrap();
        let _ =
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {} WITH (FORCE)", self.name))).execute(&mut c).await;
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
