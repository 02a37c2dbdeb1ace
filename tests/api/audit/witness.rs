//! Witness cosigning (c2sp.org/tlog-witness, tlog-cosignature): a `custos witness` server on
//! port 0 and a second, unreachable witness. The checkpointer gets the live one's
//! cosignature on every ledger's latest checkpoint (first from size 0, then with a
//! consistency proof), the checkpoint endpoint serves it, `custos verify` passes with
//! `--min-cosignatures 1` and fails with 2. A ledger rewritten by the superuser — the
//! sequencer still signs with the real key — is refused by the witness (422) and the fork is
//! stored and reported by `custos verify`.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use custos::audit::checkpoint::{NoteVerifier, SignedNote};
use custos::audit::cosignature::{CosignatureVerifier, Cosigner};
use custos::audit::sequencer::Leader;
use custos::audit::signing::{self, LedgerSigner};
use custos::audit::witness::{AddCheckpoint, Witness};
use custos::audit::witnessing::{self, CosignatureFinding};
use custos::audit::{Action, AuditContext, AuditEvent, Outcome};
use custos::cli::ledger::Cosigned;
use custos::db::Claims;
use reqwest::StatusCode;
use uuid::Uuid;

use super::{ORIGIN, drain, setup};
use crate::common::TestApp;

async fn write_events(app: &TestApp, org: Uuid, n: usize) {
    let claims = Claims::system(Some(org));
    let mut tx = custos::db::begin(&app.pool, &claims).await.unwrap();
    let ctx = AuditContext::from_claims(&claims);
    for i in 0..n {
        let ev = AuditEvent::new(Action::Read, "patient", Outcome::Success).resource(format!("w{i}"));
        custos::audit::record(&mut tx, &ctx, &ev).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Drains as the sequencer would with `CUSTOS_WITNESSES` set.
async fn drain_witnessed(app: &TestApp, witnesses: &str) {
    let signer = LedgerSigner::new(ORIGIN, &app.keys).unwrap();
    let cfg = app.db.settings(&[("CUSTOS_LEDGER_ORIGIN", ORIGIN), ("CUSTOS_WITNESSES", witnesses)]).ledger;
    let mut l = Leader::try_acquire(&app.db.pool.connect_options()).await.unwrap().expect("leader lock");
    l.drain(&signer, &cfg).await.unwrap();
    l.release().await;
}

async fn ledgers(app: &TestApp) -> Vec<(Uuid, i64)> {
    sqlx::query_as("SELECT ledger_id, size FROM audit_ledgers ORDER BY ledger_id").fetch_all(&app.pool).await.unwrap()
}

/// `(ledger, latest checkpoint size, cosignatures on it by witness vkey)`.
async fn cosignature_counts(app: &TestApp, vkey: &str) -> Vec<(Uuid, i64, i64)> {
    sqlx::query_as(
        "SELECT c.ledger_id, c.tree_size, (SELECT count(*) FROM audit_cosignatures s WHERE s.ledger_id = c.ledger_id \
           AND s.tree_size = c.tree_size AND s.witness = $1) \
         FROM (SELECT DISTINCT ON (ledger_id) ledger_id, tree_size FROM audit_checkpoints \
               ORDER BY ledger_id, tree_size DESC) c ORDER BY 1",
    )
    .bind(vkey)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn auditor_check(app: &TestApp, keys: &[CosignatureVerifier], n: usize) -> Vec<CosignatureFinding> {
    let mut conn = app.pool.acquire().await.unwrap().detach();
    sqlx::query("SET ROLE custos_auditor").execute(&mut conn).await.unwrap();
    witnessing::check(&mut conn, keys, n).await.unwrap()
}

/// `custos verify --key … --witness … --min-cosignatures n` against the test database.
async fn cli_verify(app: &TestApp, log_key: &str, witnesses: &[String], n: usize) -> bool {
    let settings = app.db.settings(&[("CUSTOS_LEDGER_ORIGIN", ORIGIN)]);
    let cosigned = Cosigned::parse(witnesses, n).unwrap();
    custos::cli::ledger::verify(&settings, None, &[log_key.to_owned()], &[], &cosigned).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_cosigns_checkpoints_and_refuses_a_rewritten_ledger() {
    let (app, w) = setup().await;
    write_events(&app, w.org_a, 5).await;
    drain(&app).await;
    let log = LedgerSigner::new(ORIGIN, &app.keys).unwrap().verifier();

    // The witness knows every ledger of this installation by its key (name = origin).
    let log_keys: Vec<NoteVerifier> =
        ledgers(&app).await.iter().map(|(id, _)| log.renamed(&signing::origin_for(ORIGIN, *id)).unwrap()).collect();
    let mut known: HashMap<String, Vec<NoteVerifier>> = HashMap::new();
    for k in &log_keys {
        known.entry(k.name().to_owned()).or_default().push(k.clone());
    }
    let dir = std::env::temp_dir().join(format!("custos-witness-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cosigner = Cosigner::generate("witness.test/live").unwrap();
    let live_key = cosigner.verifier();
    let witness = Arc::new(Witness::open(cosigner, known, dir.join("state.json")).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let live_url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(custos::cli::witness::server(listener, witness).unwrap());
    // The second witness is down: nothing listens on its port.
    let down_key = Cosigner::generate("witness.test/down").unwrap().verifier();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let config = format!("{live_url} {}, {down_url} {}", live_key.encode(), down_key.encode());

    drain_witnessed(&app, &config).await;
    let live = cosignature_counts(&app, &live_key.encode()).await;
    assert!(!live.is_empty());
    assert!(live.iter().all(|(_, _, n)| *n == 1), "every latest checkpoint cosigned by the live witness: {live:?}");
    assert!(cosignature_counts(&app, &down_key.encode()).await.iter().all(|(_, _, n)| *n == 0));

    // The ledger grows: the next checkpoint goes with a consistency proof from the cosigned size.
    write_events(&app, w.org_a, 4).await;
    drain_witnessed(&app, &config).await;
    let live = cosignature_counts(&app, &live_key.encode()).await;
    assert!(live.iter().all(|(_, _, n)| *n == 1), "{live:?}");
    let org_a_size = live.iter().find(|(id, _, _)| *id == w.org_a).unwrap().1;

    // The auditor's checkpoint carries the cosignature line, valid for the live key.
    let url = app.url(&format!("/v1/ledgers/{}/checkpoint", w.org_a));
    let resp = app.client.get(&url).bearer_auth(&w.ua.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let note = SignedNote::parse(resp.text().await.unwrap().as_bytes()).unwrap();
    assert!(note.text.contains(&format!("\n{org_a_size}\n")));
    assert!(note.verify(&log_keys).is_ok(), "the log's signature still verifies beside the cosignature");
    assert_eq!(CosignatureVerifier::count_valid(std::slice::from_ref(&live_key), &note), 1);

    // The witness speaks the protocol: a stale old size is 409 with the size it knows.
    let stale = AddCheckpoint { old_size: 0, proof: vec![], checkpoint: drop_cosignatures(&note) }.encode();
    let resp = app.client.post(format!("{live_url}/add-checkpoint")).body(stale).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(resp.headers()["content-type"], "text/x.tlog.size");
    assert_eq!(resp.text().await.unwrap(), format!("{org_a_size}\n"));

    // `custos verify`: one cosignature required passes, two fail (the second witness is down).
    let wkeys = [live_key.encode(), down_key.encode()];
    assert!(auditor_check(&app, &[live_key.clone(), down_key.clone()], 1).await.is_empty());
    assert!(cli_verify(&app, &log.encode(), &wkeys, 1).await, "--min-cosignatures 1 passes");
    let too_few = auditor_check(&app, &[live_key.clone(), down_key.clone()], 2).await;
    assert!(!too_few.is_empty() && too_few.iter().all(|f| matches!(f, CosignatureFinding::TooFew { found: 1, .. })));
    assert!(!cli_verify(&app, &log.encode(), &wkeys, 2).await, "--min-cosignatures 2 fails");

    // The superuser rewrites org A's stored history (its Merkle nodes and leaves); the
    // sequencer signs the next checkpoint with the real key all the same.
    if (org_a_size as u64).is_power_of_two() {
        write_events(&app, w.org_a, 1).await;
        drain_witnessed(&app, &config).await;
    }
    let mut tx = app.pool.begin().await.unwrap();
    for sql in [
        "ALTER TABLE audit_tree_nodes DISABLE TRIGGER ALL",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "UPDATE audit_tree_nodes SET hash = sha256(hash) WHERE ledger_id = $1",
        "UPDATE audit_log SET leaf_hash = sha256(leaf_hash) WHERE ledger_id = $1",
        "ALTER TABLE audit_tree_nodes ENABLE ALWAYS TRIGGER audit_tree_nodes_append_only",
        "ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only",
        "ALTER TABLE audit_tree_nodes ENABLE ALWAYS TRIGGER audit_tree_nodes_no_truncate",
        "ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate",
    ] {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") { q.bind(w.org_a) } else { q };
        q.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    write_events(&app, w.org_a, 3).await;
    drain_witnessed(&app, &config).await;

    // Refused: no cosignature on the new checkpoint, a stored alert, and verify reports it.
    let after = cosignature_counts(&app, &live_key.encode()).await;
    let (_, size, n) = after.iter().find(|(id, _, _)| *id == w.org_a).unwrap();
    assert!(*size > org_a_size);
    assert_eq!(*n, 0, "the witness must not cosign the rewritten ledger");
    let alerts: Vec<(Uuid, i32)> =
        sqlx::query_as("SELECT ledger_id, http_status FROM audit_witness_alerts").fetch_all(&app.pool).await.unwrap();
    assert_eq!(alerts, vec![(w.org_a, 422)]);
    let findings = auditor_check(&app, std::slice::from_ref(&live_key), 0).await;
    assert!(
        findings
            .iter()
            .any(|f| matches!(f, CosignatureFinding::Fork { ledger_id, status: 422, .. } if *ledger_id == w.org_a)),
        "{findings:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The note as the log signed it (the witness's own lines removed).
fn drop_cosignatures(note: &SignedNote) -> String {
    let mut n = note.clone();
    n.signatures.retain(|s| !s.name.starts_with("witness.test/"));
    n.encode()
}
