//! The imported activity logs verify in the ledger: after an import, the sequencer
//! (`custos sequencer --once`) integrates the inbox and `custos verify` passes; the imported
//! events sit in `audit_log` flagged imported, with their original timestamps, in source order,
//! between the bootstrap's events and the import's own record.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use custos::audit::signing::LedgerSigner;
use custos::import::ejson;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{self, Env};

const ORIGIN: &str = "import.test/ledger";

fn custos(env: &Env, args: &[&str]) -> (i32, String) {
    let k = &env.keys;
    let out = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(args)
        .env("DATABASE_URL", &env.db.url)
        .env("CUSTOS_LEDGER_ORIGIN", ORIGIN)
        .env("CUSTOS_KEK", B64.encode(k.kek.expose()))
        .env("CUSTOS_JWT_SIGNING_KEY", B64.encode(k.jwt_signing.expose()))
        .env("CUSTOS_LEDGER_SIGNING_KEY", B64.encode(k.ledger_signing.expose()))
        .env("CUSTOS_DATA_DIR", std::env::temp_dir().join(format!("custos-import-cli-{}", Uuid::new_v4())))
        .env("CUSTOS_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn imported_activity_logs_verify_in_the_ledger() {
    let env = harness::env(30, 61, 0.05).await;
    let report = env.import(&env.options()).await;
    assert!(report.balanced);
    let imported = report.collections.iter().find(|c| c.name == "activity_logs").unwrap().imported;
    assert!(imported > 0);

    let (code, out) = custos(&env, &["sequencer", "--once"]);
    assert_eq!(code, 0, "{out}");
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_inbox").fetch_one(&env.db.pool).await.unwrap();
    assert_eq!(inbox, 0, "the sequencer drained the inbox");
    let (code, out) = custos(&env, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified"), "{out}");
    // The library agrees, with the key the auditor would pin.
    let signer = LedgerSigner::new(ORIGIN, &env.keys).unwrap();
    let mut conn = env.db.pool.acquire().await.unwrap();
    let reports = custos::audit::verify::verify_all(&mut conn, &[signer.verifier()], ORIGIN, &[]).await.unwrap();
    let org = reports.iter().find(|r| r.ledger_id == env.org).expect("the org's ledger");
    assert!(reports.iter().all(|r| r.finding.is_none() && r.checkpoints > 0), "{reports:?}");
    drop(conn);

    // In the org's ledger: imported, original timestamps, source order, after the data.
    let log: Vec<(i64, Uuid, chrono::DateTime<chrono::Utc>, String, bool)> = sqlx::query_as(
        "SELECT seq, event_id, occurred_at, action::text, imported FROM audit_log WHERE ledger_id = $1 ORDER BY seq",
    )
    .bind(env.org)
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(log.len() as u64, org.size);
    let got: Vec<(Uuid, chrono::DateTime<chrono::Utc>)> = log.iter().filter(|e| e.4).map(|e| (e.1, e.2)).collect();
    assert_eq!(got.len() as u64, imported);
    let mut expected = Vec::new();
    let text = std::fs::read_to_string(env.dir.join("activity_logs.json")).unwrap();
    for doc in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        let Ok(legacy) = ejson::oid(&doc["_id"]) else { continue };
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT new_id FROM legacy_id_map WHERE collection = 'activity_logs' AND legacy_id = $1",
        )
        .bind(&legacy)
        .fetch_optional(&env.db.pool)
        .await
        .unwrap();
        if let Some(id) = id {
            expected.push((id, ejson::datetime(&doc["timestamp"]).unwrap()));
        }
    }
    assert_eq!(got, expected, "same events, original timestamps, source order");
    let seqs: Vec<i64> = log.iter().filter(|e| e.4).map(|e| e.0).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "contiguous: nothing interleaved");
    let last = log.last().unwrap();
    assert_eq!((last.3.as_str(), last.4), ("import", false), "the import's own record comes last");
    assert!(!log[0].4, "the data's own events come first");
}
