//! Ledger tests against a real PostgreSQL: the sequencer (exactly once, under concurrency and
//! crashes), online verification against tampering by the superuser, proofs from the database,
//! export bundles and their offline verification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

#[path = "../db/fixture.rs"]
#[allow(dead_code)]
mod fixture;

mod browser_vectors;
mod bundle;
mod cli;
mod proofs;
mod queries;
mod sequencer;
mod startup;
mod tamper;

use custos::audit::sequencer::Leader;
use custos::audit::signing::LedgerSigner;
use custos::audit::{Action, AuditContext, AuditEvent, Outcome};
use custos::config::LedgerSettings;
use custos::db::Claims;
use custos::keys::RootKeys;
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::TestDb;

pub const ORIGIN: &str = "test.custos/ledger";

/// A migrated database with two organizations and a signer.
pub struct World {
    pub db: TestDb,
    pub org_a: Uuid,
    pub org_b: Uuid,
    pub signer: LedgerSigner,
    pub cfg: LedgerSettings,
    /// What the `custos` binary needs in its environment to act on this world.
    pub env: Vec<(String, String)>,
}

impl World {
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let mut orgs = Vec::new();
        for name in ["Org A", "Org B"] {
            let id: Uuid = sqlx::query_scalar("INSERT INTO organizations (name) VALUES ($1) RETURNING id")
                .bind(name)
                .fetch_one(&db.pool)
                .await
                .unwrap();
            orgs.push(id);
        }
        let key = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            RootKeys::random().ledger_signing.expose(),
        );
        let env: Vec<(String, String)> = [
            ("CUSTOS_LEDGER_ORIGIN", ORIGIN.to_owned()),
            ("CUSTOS_KEK", key.clone()),
            ("CUSTOS_JWT_SIGNING_KEY", key.clone()),
            ("CUSTOS_LEDGER_SIGNING_KEY", key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let settings = db.settings(&pairs);
        let signer = LedgerSigner::new(ORIGIN, &RootKeys::load(&settings).unwrap()).unwrap();
        let mut cfg = settings.ledger.clone();
        cfg.batch_size = 50;
        cfg.batch_interval = std::time::Duration::from_millis(5);
        cfg.checkpoint_interval = std::time::Duration::from_millis(20);
        let mut env = env;
        env.push(("DATABASE_URL".into(), db.url.clone()));
        Self { org_a: orgs[0], org_b: orgs[1], db, signer, cfg, env }
    }

    pub async fn leader(&self) -> Leader {
        Leader::try_acquire(&self.db.pool.connect_options()).await.unwrap().expect("leader lock")
    }

    /// Integrates everything and signs a checkpoint for every ledger that grew.
    pub async fn drain(&self) -> usize {
        let mut l = self.leader().await;
        let n = l.drain(&self.signer, &self.cfg).await.unwrap();
        l.release().await;
        n
    }

    pub async fn report(&self, external: &[String]) -> Vec<custos::audit::verify::LedgerReport> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        custos::audit::verify::verify_all(&mut conn, &[self.signer.verifier()], ORIGIN, external).await.unwrap()
    }
}

/// Records `n` events through the app's write path (custos_app role, RLS on the inbox).
pub async fn write_events(pool: &PgPool, org: Option<Uuid>, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(n);
    let mut tx = custos::db::begin(pool, &Claims::system(org)).await.unwrap();
    let ctx = AuditContext {
        client_ip: Some("10.1.2.3".parse().unwrap()),
        user_agent: Some("test \"agent\"\n/1.0 ü".into()),
        request_id: Some(Uuid::new_v4()),
        ..AuditContext::from_claims(&Claims::system(org))
    };
    for i in 0..n {
        let ev = AuditEvent::new(Action::Read, "patient", Outcome::Success)
            .resource(Uuid::new_v4())
            .resource(format!("r{i}"))
            .patient(Uuid::new_v4())
            .break_glass(i % 7 == 3)
            .reason(if i % 7 == 3 { "emergency: unconscious patient" } else { "" });
        ids.push(custos::audit::record(&mut tx, &ctx, &ev).await.expect("record an event"));
    }
    tx.commit().await.unwrap();
    ids
}

/// (count, min seq, max seq, distinct event ids) per ledger, as the superuser sees it.
pub async fn log_shape(pool: &PgPool, ledger: Uuid) -> (i64, Option<i64>, Option<i64>, i64) {
    sqlx::query_as("SELECT count(*), min(seq), max(seq), count(DISTINCT event_id) FROM audit_log WHERE ledger_id = $1")
        .bind(ledger)
        .fetch_one(pool)
        .await
        .unwrap()
}
