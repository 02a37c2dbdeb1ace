//! Export bundles verify offline, and every way of doctoring one is caught.

use custos::audit::bundle::export;
use custos::audit::offline::{BundleError, BundleReport, verify_bundle};
use custos::audit::signing::LedgerSigner;
use custos::audit::verify::Kind;
use custos::keys::RootKeys;

use crate::{ORIGIN, World, write_events};

/// Org A with checkpoints at 10, 25 and 40; returns the bundle and the checkpoint at 25.
async fn bundle() -> (World, String, String) {
    let w = World::new().await;
    for n in [10, 15, 15] {
        write_events(&w.db.pool, Some(w.org_a), n).await;
        w.drain().await;
    }
    write_events(&w.db.pool, Some(w.org_a), 3).await; // integrated but not yet signed
    let mut leader = w.leader().await;
    custos::audit::batch::run_batch(leader.conn(), 100).await.unwrap();
    leader.release().await;
    let mut conn = w.db.pool.acquire().await.unwrap();
    let mut out = Vec::new();
    let s = export(&mut conn, w.org_a, ORIGIN, &[w.signer.verifier()], &mut out).await.unwrap();
    assert_eq!((s.size, s.checkpoints), (40, 3), "exports exactly the signed prefix");
    let kept: String =
        sqlx::query_scalar("SELECT signed_note FROM audit_checkpoints WHERE ledger_id = $1 AND tree_size = 25")
            .bind(w.org_a)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    (w, String::from_utf8(out).unwrap(), kept)
}

fn check(w: &World, text: &str, external: &[String]) -> Result<BundleReport, BundleError> {
    verify_bundle(text.as_bytes(), Some(&[w.signer.verifier()]), external, |_| {})
}

fn found(w: &World, text: &str, external: &[String]) -> (u64, Kind) {
    let f = check(w, text, external).unwrap().finding.expect("must be detected");
    (f.index, f.kind)
}

/// The bundle with line `i` (0-based) replaced by `f(line)`, or removed when `f` gives None.
fn edit(text: &str, i: usize, f: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = if n == i { f(line) } else { Some(line.to_owned()) };
        if let Some(l) = line {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

fn event_line(text: &str, index: u64) -> usize {
    let needle = format!(",\"index\":{index},");
    text.lines().position(|l| l.starts_with("event ") && l.contains(&needle)).unwrap()
}

#[tokio::test]
async fn a_bundle_verifies_offline_and_doctoring_is_caught() {
    let (w, text, kept) = bundle().await;
    let ok = check(&w, &text, std::slice::from_ref(&kept)).unwrap();
    assert!(ok.finding.is_none(), "{:?}", ok.finding);
    assert_eq!((ok.ledger_id, ok.size, ok.checkpoints, ok.keys_from_bundle), (w.org_a, 40, 3, false));
    // Without --key the bundle's own keys are used, and the report says so.
    let own = verify_bundle(text.as_bytes(), None, &[], |_| {}).unwrap();
    assert!(own.finding.is_none() && own.keys_from_bundle);

    // One changed byte in event 12: the checkpoint at 25 no longer matches, and nothing
    // before the checkpoint at 10 is blamed.
    let changed = edit(&text, event_line(&text, 12), |l| Some(l.replace("\"read\"", "\"update\"")));
    assert_eq!(found(&w, &changed, &[]), (10, Kind::RootMismatch));
    // An event removed or two swapped: the exact index.
    assert_eq!(found(&w, &edit(&text, event_line(&text, 7), |_| None), &[]), (7, Kind::MissingIndex));
    let (a, b) = (event_line(&text, 3), event_line(&text, 4));
    let lines: Vec<&str> = text.lines().collect();
    let swapped = edit(&edit(&text, a, |_| Some(lines[b].to_owned())), b, |_| Some(lines[a].to_owned()));
    assert_eq!(found(&w, &swapped, &[]), (3, Kind::MissingIndex));
    // A checkpoint signed by someone else, with the pinned key.
    let cp_line = text.lines().position(|l| l.starts_with("checkpoint ")).unwrap();
    let mallory = LedgerSigner::new(ORIGIN, &RootKeys::random()).unwrap();
    let forged = mallory.sign(w.org_a, 10, [0; 32]).unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, forged);
    assert_eq!(found(&w, &edit(&text, cp_line, |_| Some(format!("checkpoint {b64}"))), &[]), (10, Kind::BadSignature));
    // Truncation: of the file (an error), and of the ledger (a consistent shorter bundle)
    // against a checkpoint the auditor kept.
    assert!(matches!(check(&w, &text[..text.len() - 8], &[]), Err(BundleError::Malformed { .. })));
    let short: String = {
        let cut = text.lines().position(|l| l.contains(",\"index\":10,")).unwrap();
        let mut s: String = text.lines().take(cut).map(|l| format!("{l}\n")).collect();
        s.push_str("end 10\n");
        s
    };
    assert!(check(&w, &short, &[]).unwrap().finding.is_none(), "a shorter honest prefix verifies on its own");
    assert_eq!(found(&w, &short, std::slice::from_ref(&kept)), (10, Kind::MissingIndex));
}
