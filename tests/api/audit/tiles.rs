//! C2SP tlog-tiles per ledger, checked by an independent client: Cloudflare's `signed_note`
//! verifies the checkpoint with the keys of `/v1/audit/keys`, and `tlog_tiles` (a port of Go's
//! sumdb tlog) proves a sampled entry's inclusion and the consistency of two checkpoints from
//! hash tiles fetched over HTTP without a token once the organization's admin has published
//! the ledger. Entry bundles always need an auditor's token; only an admin publishes.

use custos::audit::{Action, AuditContext, AuditEvent, Outcome};
use custos::db::Claims;
use reqwest::StatusCode;
use signed_note::{Note, StandardVerifier, Verifier, VerifierList};
use tlog_tiles::{Checkpoint, Error as TlogError, Hash, Tile, TileHashReader, TileReader};
use uuid::Uuid;

use super::{drain, setup};
use crate::common::TestApp;

/// Records `n` events in `org`'s ledger through the app's write path.
async fn write_events(app: &TestApp, org: Uuid, n: usize) {
    let claims = Claims::system(Some(org));
    let mut tx = custos::db::begin(&app.pool, &claims).await.unwrap();
    let ctx = AuditContext::from_claims(&claims);
    for i in 0..n {
        let ev = AuditEvent::new(Action::Read, "patient", Outcome::Success).resource(format!("r{i}"));
        custos::audit::record(&mut tx, &ctx, &ev).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// GET without (or with) a token: status, Cache-Control, body.
async fn fetch(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, String, Vec<u8>) {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let cc = resp.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, cc, resp.bytes().await.unwrap().to_vec())
}

/// Reads tiles over HTTP for `tlog_tiles` (which is synchronous: run it on a blocking thread).
struct HttpTiles {
    client: reqwest::Client,
    base: String,
    rt: tokio::runtime::Handle,
}

impl TileReader for HttpTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles
            .iter()
            .map(|t| {
                // tlog_tiles names tiles Go-sumdb style, "tile/8/<L>/<N>…"; C2SP drops the height.
                let path = t.path().replacen("tile/8/", "tile/", 1);
                let url = format!("{}/{path}", self.base);
                self.rt.block_on(async {
                    let resp =
                        self.client.get(&url).send().await.map_err(|e| TlogError::InvalidInput(e.to_string()))?;
                    if resp.status() != StatusCode::OK {
                        return Err(TlogError::InvalidInput(format!("{url}: {}", resp.status())));
                    }
                    Ok(resp.bytes().await.map_err(|e| TlogError::InvalidInput(e.to_string()))?.to_vec())
                })
            })
            .collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// The ledger's published verifier keys as `signed_note` verifiers; the first is named like
/// the ledger's origin.
async fn verifiers(app: &TestApp, ledger: Uuid) -> VerifierList {
    let (s, _, body) = fetch(app, &format!("/v1/ledgers/{ledger}/keys"), None).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with(&format!("{}/{ledger}+", super::ORIGIN)), "{first}");
    let list: Vec<Box<dyn Verifier>> =
        text.lines().map(|k| Box::new(StandardVerifier::new(k).unwrap()) as Box<dyn Verifier>).collect();
    VerifierList::new(list)
}

/// The anonymous checkpoint, its signature checked by `signed_note`; its origin is the
/// ledger's, and the key that signed it is named like the origin.
async fn verified_checkpoint(app: &TestApp, ledger: Uuid) -> Checkpoint {
    let (s, cc, body) = fetch(app, &format!("/v1/ledgers/{ledger}/checkpoint"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cc, "public, no-cache");
    let note = Note::from_bytes(&body).unwrap();
    let (verified, _) = note.verify(&verifiers(app, ledger).await).expect("signed by a published key");
    // Signed under the key name that equals the origin (C2SP tlog-checkpoint).
    assert!(verified.iter().all(|s| s.name() == format!("{}/{ledger}", super::ORIGIN)), "{verified:?}");
    assert!(!verified.is_empty());
    let cp = Checkpoint::from_bytes(note.text()).unwrap();
    assert_eq!(cp.origin(), format!("{}/{ledger}", super::ORIGIN));
    cp
}

/// The entries of bundle `n` (auditor's token), each the canonical bytes of one event.
async fn bundle(app: &TestApp, ledger: Uuid, n: u64, token: &str) -> Vec<Vec<u8>> {
    let path = format!("/v1/ledgers/{ledger}/tile/entries/{}", custos::audit::tiles::encode_index(n));
    let (s, cc, body) = fetch(app, &path, Some(token)).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(cc, "private, no-store");
    decode_bundle(&body)
}

/// The entries of a bundle: each a big-endian `uint16` length, then the bytes.
fn decode_bundle(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        out.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_client_checks_a_published_ledger_through_its_tiles() {
    let (app, w) = setup().await;
    write_events(&app, w.org_a, 600).await;
    drain(&app).await;
    let base = app.url(&format!("/v1/ledgers/{}", w.org_a));
    let cp_path = format!("/v1/ledgers/{}/checkpoint", w.org_a);

    // Not published: nothing without a token; the auditor reads it (private).
    assert_eq!(fetch(&app, &cp_path, None).await.0, StatusCode::NOT_FOUND);
    let (s, cc, _) = fetch(&app, &format!("/v1/ledgers/{}/tile/0/000", w.org_a), Some(&w.ua.token)).await;
    assert_eq!((s, cc.as_str()), (StatusCode::OK, "private, no-store"));
    assert_eq!(fetch(&app, &format!("/v1/ledgers/{}/tile/0/000", w.org_a), None).await.0, StatusCode::NOT_FOUND);

    // Only the organization's own admin publishes.
    let publish = |token: String, ledger: Uuid| {
        let req = app.client.put(app.url(&format!("/v1/ledgers/{ledger}/public"))).bearer_auth(token);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(publish(w.ua.token.clone(), w.org_a).await, StatusCode::FORBIDDEN);
    assert_eq!(publish(w.ab.token.clone(), w.org_a).await, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&app, &cp_path, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(publish(w.aa.token.clone(), w.org_a).await, StatusCode::OK);

    let cp1 = verified_checkpoint(&app, w.org_a).await;
    assert!(cp1.size() >= 600, "{}", cp1.size());
    // Full tiles are immutable; partial ones are not; a tile beyond the tree does not exist.
    let (s, cc, body) = fetch(&app, &format!("/v1/ledgers/{}/tile/0/001", w.org_a), None).await;
    assert_eq!((s, cc.as_str(), body.len()), (StatusCode::OK, "public, max-age=31536000, immutable", 256 * 32));
    let (s, cc, body) = fetch(&app, &format!("/v1/ledgers/{}/tile/1/000.p/2", w.org_a), None).await;
    assert_eq!((s, cc.as_str(), body.len()), (StatusCode::OK, "public, no-cache", 64));
    assert_eq!(fetch(&app, &format!("/v1/ledgers/{}/tile/0/x001/000", w.org_a), None).await.0, StatusCode::NOT_FOUND);
    // Entries never without a token, nor for another organization.
    assert_eq!(
        fetch(&app, &format!("/v1/ledgers/{}/tile/entries/000", w.org_a), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fetch(&app, &format!("/v1/ledgers/{}/tile/entries/000", w.org_a), Some(&w.ab.token)).await.0,
        StatusCode::NOT_FOUND
    );

    // Inclusion of sampled entries, from the entry bundle's bytes to the signed root.
    let sample = [0u64, 255, 256, 300, 511];
    let mut entries = Vec::new();
    for &i in &sample {
        let b = bundle(&app, w.org_a, i / 256, &w.ua.token).await;
        assert_eq!(b.len(), 256);
        entries.push(b[(i % 256) as usize].clone());
    }
    let reader = HttpTiles { client: app.client.clone(), base: base.clone(), rt: tokio::runtime::Handle::current() };
    let (size1, root1) = (cp1.size(), *cp1.hash());
    let reader = tokio::task::spawn_blocking(move || {
        let thr = TileHashReader::new(size1, root1, &reader);
        for (&i, entry) in sample.iter().zip(&entries) {
            let proof = tlog_tiles::prove_record(size1, i, &thr).unwrap();
            tlog_tiles::check_record(&proof, size1, root1, i, tlog_tiles::record_hash(entry)).expect("inclusion");
            assert!(tlog_tiles::check_record(&proof, size1, root1, i, tlog_tiles::record_hash(b"forged")).is_err());
        }
        reader
    })
    .await
    .unwrap();

    // The last, partial entry bundle.
    let last = cp1.size() - 1;
    let width = cp1.size() % 256;
    if width != 0 {
        let path = format!(
            "/v1/ledgers/{}/tile/entries/{}.p/{width}",
            w.org_a,
            custos::audit::tiles::encode_index(last / 256)
        );
        let (s, _, body) = fetch(&app, &path, Some(&w.ua.token)).await;
        assert_eq!(s, StatusCode::OK);
        let mut entries = decode_bundle(&body);
        assert_eq!(entries.len() as u64, width);
        let last_entry = entries.pop().unwrap();
        let reader =
            HttpTiles { client: app.client.clone(), base: base.clone(), rt: tokio::runtime::Handle::current() };
        tokio::task::spawn_blocking(move || {
            let thr = TileHashReader::new(size1, root1, &reader);
            let proof = tlog_tiles::prove_record(size1, last, &thr).unwrap();
            tlog_tiles::check_record(&proof, size1, root1, last, tlog_tiles::record_hash(&last_entry)).expect("last");
        })
        .await
        .unwrap();
    }

    // The ledger grows; the new checkpoint is consistent with the old one.
    write_events(&app, w.org_a, 300).await;
    drain(&app).await;
    let cp2 = verified_checkpoint(&app, w.org_a).await;
    assert!(cp2.size() > size1);
    let (size2, root2) = (cp2.size(), *cp2.hash());
    tokio::task::spawn_blocking(move || {
        let thr = TileHashReader::new(size2, root2, &reader);
        let proof = tlog_tiles::prove_tree(size2, size1, &thr).unwrap();
        tlog_tiles::check_tree(&proof, size2, root2, size1, root1).expect("consistency");
        assert!(tlog_tiles::check_tree(&proof, size2, root2, size1, Hash([7; 32])).is_err());
    })
    .await
    .unwrap();

    // Withdrawn: anonymous readers are refused again.
    let status = app
        .client
        .delete(app.url(&format!("/v1/ledgers/{}/public", w.org_a)))
        .bearer_auth(&w.aa.token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetch(&app, &cp_path, None).await.0, StatusCode::NOT_FOUND);
}
