//! Test vectors for the console's in-browser verifier (assets/console/js/tlog-verify.js),
//! produced by the Rust code the server runs: events rendered exactly as `GET /v1/audit/events`
//! lists them, their canonical bytes and leaf hashes, checkpoints signed the way the sequencer
//! signs a ledger's notes, inclusion proofs for every leaf, a consistency proof, and a tampered
//! event. `node --test tests/browser/` checks the module against the committed file.
//!
//! The committed file must equal what this code writes; after a deliberate format change,
//! regenerate it with `CUSTOS_WRITE_FIXTURES=1 cargo test --test ledger browser_vectors`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use custos::audit::checkpoint::{Checkpoint, NoteSigner, sign_checkpoint};
use custos::audit::formats::event_json;
use custos::audit::merkle::{self, MemoryTree};
use custos::audit::signing::origin_for;
use custos::audit::store::{EventFields, LogRow};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use uuid::Uuid;

const FIXTURE: &str = "tests/browser/fixtures/tlog-vectors.json";
const ORIGIN: &str = "custos.example/ledger";
const SIZE: u64 = 7;
const OLD_SIZE: u64 = 4;
const TAMPERED: u64 = 3;

fn fields(i: u64) -> EventFields {
    let id = |n: u128| Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0000 + n);
    EventFields {
        event_id: id(100 + u128::from(i)),
        occurred_at: Utc.timestamp_opt(1_764_000_000 + i as i64 * 61, 123_456_000).unwrap(),
        org_id: Some(id(1)),
        actor_id: (i != 1).then(|| id(2)),
        actor_role: (i != 1).then(|| "auditor".to_owned()),
        action: ["read", "login_failed", "break_glass", "export", "read", "update", "admin"][i as usize].to_owned(),
        resource_type: "patient".to_owned(),
        resource_ids: vec![id(50).to_string(), format!("page {i}")],
        patient_id: i.is_multiple_of(2).then(|| id(50)),
        outcome: if i == 1 { "denied" } else { "success" }.to_owned(),
        request_id: Some(id(200 + u128::from(i))),
        client_ip: Some("192.0.2.7".to_owned()),
        // Text a JSON encoder might write differently: quotes, backslash, controls, non-ASCII.
        user_agent: Some(format!("Mozilla/5.0 \"quoted\" \\ tab\t ctl\u{1} é 漢 🦀 #{i}")),
        reason: (i == 2).then(|| "ED \"trauma\"\nline two \u{2028} ok".to_owned()),
        break_glass: i == 2,
        imported: i == 5,
        correlation_id: (i == 4).then(|| "client-req-42".to_owned()),
        patient_ids: if i == 3 { vec![id(50), id(51)] } else { Vec::new() },
        // Index 5 is an entry hashed in format version 1 (before correlation_id, patient_ids).
        format_version: if i == 5 { 1 } else { 2 },
    }
}

fn row(ledger: Uuid, i: u64, f: EventFields) -> LogRow {
    let leaf = f.canonical(ledger, i).leaf_hash().unwrap();
    LogRow { ledger_id: ledger, seq: i as i64, event: f, leaf_hash: leaf.to_vec(), chain_hash: vec![0; 32] }
}

fn vectors() -> Value {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7; 32])).unwrap();
    let stranger = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    let ledger = fields(0).org_id.unwrap();
    let ledger_origin = origin_for(ORIGIN, ledger);
    let ledger_signer = signer.renamed(&ledger_origin).unwrap();

    let mut events = Vec::new();
    let mut canonical = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..SIZE {
        let r = row(ledger, i, fields(i));
        let bytes = r.event.canonical(ledger, i).canonical_bytes().unwrap();
        canonical.push(String::from_utf8(bytes).unwrap());
        leaves.push(<[u8; 32]>::try_from(r.leaf_hash.as_slice()).unwrap());
        events.push(event_json(&r));
    }
    let b64 = |h: &[u8]| B64.encode(h);
    let tree = MemoryTree::from_leaves(&leaves);
    let small = MemoryTree::from_leaves(&leaves[..OLD_SIZE as usize]);
    let note = |size: u64, root| {
        sign_checkpoint(&Checkpoint::new(&ledger_origin, size, root).unwrap(), std::slice::from_ref(&ledger_signer))
            .unwrap()
    };
    let inclusion: Vec<Value> = (0..SIZE)
        .map(|i| {
            let proof = merkle::inclusion_proof(&tree, i, SIZE).unwrap();
            json!({ "index": i, "tree_size": SIZE, "proof": proof.iter().map(|h| b64(h)).collect::<Vec<_>>() })
        })
        .collect();
    let consistency = merkle::consistency_proof(&tree, OLD_SIZE, SIZE).unwrap();
    merkle::verify_consistency(OLD_SIZE, SIZE, &small.root(), &tree.root(), &consistency).unwrap();

    // What a superuser's UPDATE of one column looks like through the API: the row's fields
    // changed, its stored leaf hash (and the tree) not.
    let mut changed = fields(TAMPERED);
    changed.actor_role = Some("admin".to_owned());
    let mut tampered = event_json(&row(ledger, TAMPERED, changed));
    tampered["leaf_hash"] = json!(b64(&leaves[TAMPERED as usize]));
    tampered["chain_hash"] = json!(b64(&[0; 32]));

    json!({
        "about": "Written by tests/ledger/browser_vectors.rs from the Rust ledger code; do not edit.",
        "origin": ORIGIN,
        "ledger_id": ledger,
        "ledger_origin": ledger_origin,
        "vkey": signer.verifier().encode(),
        "ledger_vkey": ledger_signer.verifier().encode(),
        "stranger_vkey": stranger.verifier().encode(),
        "events": events,
        "canonical": canonical,
        "leaf_hashes": leaves.iter().map(|h| b64(h)).collect::<Vec<_>>(),
        "root": b64(&tree.root()),
        "old_root": b64(&small.root()),
        "checkpoint": note(SIZE, tree.root()),
        "old_checkpoint": note(OLD_SIZE, small.root()),
        "stranger_checkpoint": sign_checkpoint(
            &Checkpoint::new(&ledger_origin, SIZE, tree.root()).unwrap(),
            &[stranger.renamed(&ledger_origin).unwrap()],
        ).unwrap(),
        "inclusion": inclusion,
        "consistency": { "from": OLD_SIZE, "to": SIZE, "proof": consistency.iter().map(|h| b64(h)).collect::<Vec<_>>() },
        "tampered": { "index": TAMPERED, "event": tampered },
    })
}

#[test]
fn browser_vectors_match_the_rust_ledger_code() {
    let text = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    if std::env::var_os("CUSTOS_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{FIXTURE} is not what the ledger code writes now; regenerate it with \
         CUSTOS_WRITE_FIXTURES=1 cargo test --test ledger browser_vectors"
    );
}

/// The tampered event's fields hash to another leaf, so the node tests' failure is real.
#[test]
fn browser_vectors_tampered_event_changes_the_leaf() {
    let ledger = fields(0).org_id.unwrap();
    let mut changed = fields(TAMPERED);
    changed.actor_role = Some("admin".to_owned());
    assert_ne!(
        changed.canonical(ledger, TAMPERED).leaf_hash().unwrap(),
        fields(TAMPERED).canonical(ledger, TAMPERED).leaf_hash().unwrap()
    );
}
