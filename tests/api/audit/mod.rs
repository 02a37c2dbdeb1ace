//! The audit ledger over HTTP: checkpoints, proofs (verified here, client-side, with the
//! library's RFC 9162 functions), event listings, exports and the patient access report —
//! who may read what, and bad input answered with 4xx JSON.

mod balp;
mod bundle;
mod csv;
mod disclosures;
mod events;
mod export;
mod openapi;
mod outcomes;
mod proofs;
mod report;
mod tiles;
mod tlog_proof;
mod witness;

// The clinical tests' world (orgs, users with tokens, patients, care teams), compiled here
// a second time: the clinical module keeps it private.
#[path = "../clinical/world.rs"]
#[allow(dead_code, clippy::duplicate_mod)]
mod world;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use custos::audit::checkpoint::{Checkpoint, NoteVerifier};
use custos::audit::merkle::Hash;
use custos::audit::sequencer::Leader;
use custos::audit::signing::{self, LedgerSigner};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::common::{TestApp, spawn_app_with};
use world::{Actor, World};

pub const ORIGIN: &str = "test.custos/ledger";

/// A server (sequencer off), the clinical world, and the ledger's signer for draining.
pub async fn setup() -> (TestApp, World) {
    let app = spawn_app_with(&[("CUSTOS_LEDGER_ORIGIN", ORIGIN)]).await;
    let w = world::build(&app).await;
    (app, w)
}

/// Moves the inbox into the log and signs a checkpoint for every ledger that grew, as the
/// server's sequencer would (same origin, same key).
pub async fn drain(app: &TestApp) -> usize {
    let signer = LedgerSigner::new(ORIGIN, &app.keys).unwrap();
    let cfg = app.db.settings(&[("CUSTOS_LEDGER_ORIGIN", ORIGIN)]).ledger;
    let mut l = Leader::try_acquire(&app.db.pool.connect_options()).await.unwrap().expect("leader lock");
    let n = l.drain(&signer, &cfg).await.unwrap();
    l.release().await;
    n
}

/// GET with a bearer token: (status, content type, body text).
pub async fn get_raw(app: &TestApp, path: &str, who: &Actor) -> (StatusCode, String, String) {
    let resp = app.client.get(app.url(path)).bearer_auth(&who.token).send().await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

/// GET with a bearer token, JSON body (Null when not JSON).
pub async fn get(app: &TestApp, path: &str, who: &Actor) -> (StatusCode, Value) {
    let (s, _, body) = get_raw(app, path, who).await;
    (s, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A 4xx with the JSON error shape (never a 5xx, never a bare body).
#[track_caller]
pub fn assert_client_error(status: StatusCode, body: &Value, what: &str) {
    assert!(status.is_client_error(), "{what}: {status} {body}");
    assert!(body["error"]["code"].is_string(), "{what}: JSON error body, got {body}");
}

/// The verifier keys the server publishes at `/v1/audit/keys`.
pub async fn published_keys(app: &TestApp) -> Vec<NoteVerifier> {
    let body: Value = app.client.get(app.url("/v1/audit/keys")).send().await.unwrap().json().await.unwrap();
    body["keys"].as_array().unwrap().iter().map(|k| NoteVerifier::parse(k.as_str().unwrap()).unwrap()).collect()
}

/// The latest checkpoint of `ledger`, signature and origin checked with the published keys.
pub async fn checkpoint(app: &TestApp, ledger: Uuid, who: &Actor) -> Checkpoint {
    let (s, ct, note) = get_raw(app, &format!("/v1/audit/checkpoint?ledger={ledger}"), who).await;
    assert_eq!(s, StatusCode::OK, "{note}");
    assert!(ct.starts_with("text/plain"), "{ct}");
    let keys = published_keys(app).await;
    signing::open_for(note.as_bytes(), &keys, &signing::origin_for(ORIGIN, ledger)).expect("checkpoint verifies")
}

pub fn hash(v: &Value) -> Hash {
    B64.decode(v.as_str().expect("base64 hash")).unwrap().try_into().expect("32 bytes")
}

pub fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(hash).collect()
}
