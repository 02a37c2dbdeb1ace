//! `GET /v1/audit/checkpoint`, `/v1/audit/proofs/inclusion` and `/v1/audit/proofs/consistency`:
//! every proof the server hands out verifies client-side against the signed checkpoint's root
//! (and fails for a wrong leaf or root); only the org's auditors and admins may ask.

use custos::audit::merkle::{verify_consistency, verify_inclusion};
use reqwest::StatusCode;

use super::world::call;
use super::{assert_client_error, checkpoint, drain, get, hash, hashes, setup};

#[tokio::test]
async fn inclusion_and_consistency_proofs_verify_against_signed_checkpoints() {
    let (app, w) = setup().await;
    for _ in 0..5 {
        let (s, _) = call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await;
        assert_eq!(s, StatusCode::OK);
    }
    assert!(drain(&app).await > 0);
    let cp = checkpoint(&app, w.org_a, &w.ua).await;
    assert!(cp.size >= 8, "the world's events and five reads: {}", cp.size);
    assert_eq!(checkpoint(&app, w.org_a, &w.aa).await, cp, "the org's admin reads the same checkpoint");
    let (s, listed) = get(&app, &format!("/v1/audit/events?ledger={}&limit=1000", w.org_a), &w.ua).await;
    assert_eq!(s, StatusCode::OK, "{listed}");
    let listed = listed["items"].as_array().unwrap().clone();
    assert_eq!(listed.len() as u64, cp.size);

    for index in 0..cp.size {
        let path = format!("/v1/audit/proofs/inclusion?ledger={}&index={index}&tree_size={}", w.org_a, cp.size);
        let (s, p) = get(&app, &path, &w.ua).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let (leaf, proof) = (hash(&p["leaf_hash"]), hashes(&p["proof"]));
        assert_eq!(hash(&p["root_hash"]), cp.root);
        assert_eq!(p["leaf_hash"], listed[index as usize]["leaf_hash"], "the listed event's leaf");
        verify_inclusion(&leaf, index, cp.size, &proof, &cp.root).expect("inclusion proof verifies");
        // The same proof does not vouch for another leaf, another index or another root.
        let mut wrong = leaf;
        wrong[0] ^= 1;
        assert!(verify_inclusion(&wrong, index, cp.size, &proof, &cp.root).is_err(), "wrong leaf at {index}");
        if cp.size > 1 {
            let other = hash(&listed[((index + 1) % cp.size) as usize]["leaf_hash"]);
            assert!(verify_inclusion(&other, index, cp.size, &proof, &cp.root).is_err(), "other leaf at {index}");
        }
        // Proofs for older tree sizes verify against that size's root (from a consistency answer).
        let (s, older) =
            get(&app, &format!("/v1/audit/proofs/inclusion?ledger={}&index=0&tree_size={}", w.org_a, index + 1), &w.ua)
                .await;
        assert_eq!(s, StatusCode::OK, "{older}");
        verify_inclusion(
            &hash(&older["leaf_hash"]),
            0,
            index + 1,
            &hashes(&older["proof"]),
            &hash(&older["root_hash"]),
        )
        .unwrap();
    }

    for from in 0..=cp.size {
        let path = format!("/v1/audit/proofs/consistency?ledger={}&from={from}&to={}", w.org_a, cp.size);
        let (s, p) = get(&app, &path, &w.ua).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let (old, new, proof) = (hash(&p["from_root"]), hash(&p["to_root"]), hashes(&p["proof"]));
        assert_eq!(new, cp.root);
        verify_consistency(from, cp.size, &old, &cp.root, &proof).expect("consistency proof verifies");
        if 0 < from && from < cp.size {
            let mut forged = old;
            forged[31] ^= 0x80;
            assert!(verify_consistency(from, cp.size, &forged, &cp.root, &proof).is_err(), "forged old root {from}");
        }
    }

    // The ledger grows; the auditor proves the new checkpoint extends the one they kept.
    for _ in 0..3 {
        call(&app, "GET", &format!("/v1/patients/{}", w.p2), &w.ca1, None).await;
    }
    drain(&app).await;
    let cp2 = checkpoint(&app, w.org_a, &w.ua).await;
    assert!(cp2.size > cp.size);
    let path = format!("/v1/audit/proofs/consistency?ledger={}&from={}&to={}", w.org_a, cp.size, cp2.size);
    let (s, p) = get(&app, &path, &w.ua).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!((hash(&p["from_root"]), hash(&p["to_root"])), (cp.root, cp2.root));
    verify_consistency(cp.size, cp2.size, &cp.root, &cp2.root, &hashes(&p["proof"])).expect("append-only");
}

#[tokio::test]
async fn only_the_orgs_auditors_and_admins_read_checkpoints_and_proofs_and_bad_input_is_4xx() {
    let (app, w) = setup().await;
    drain(&app).await;
    let a = w.org_a;
    let size = checkpoint(&app, a, &w.ua).await.size;
    let paths = [
        format!("/v1/audit/checkpoint?ledger={a}"),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index=0&tree_size={size}"),
        format!("/v1/audit/proofs/consistency?ledger={a}&from=1&to={size}"),
    ];
    for path in &paths {
        for who in [&w.ua, &w.aa] {
            assert_eq!(get(&app, path, who).await.0, StatusCode::OK, "{} {path}", who.name);
        }
        for who in [&w.ca1, &w.pa1] {
            let (s, body) = get(&app, path, who).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{} {path}: {body}", who.name);
            assert_eq!(body["error"]["code"], "audit_role_required");
        }
        // Another organization's admin: the ledger does not exist for them.
        let (s, body) = get(&app, path, &w.ab).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path} without a token");
    }
    // Org B's own ledger is invisible to org A's auditor.
    assert!(drain(&app).await > 0, "refusals are recorded");
    assert_eq!(get(&app, &format!("/v1/audit/checkpoint?ledger={}", w.org_b), &w.ua).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, &format!("/v1/audit/checkpoint?ledger={}", w.org_b), &w.ab).await.0, StatusCode::OK);

    // The refusals above were recorded (and are now in the ledger): sizes from here on.
    let size = checkpoint(&app, a, &w.ua).await.size;
    let big = u64::MAX;
    for path in [
        "/v1/audit/checkpoint".to_owned(),
        "/v1/audit/checkpoint?ledger=not-a-uuid".to_owned(),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index=abc&tree_size={size}"),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index=-1&tree_size={size}"),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index=0"),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index={size}&tree_size={size}"),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index=0&tree_size={}", size + 1),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index=0&tree_size=0"),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index={big}&tree_size={big}"),
        format!("/v1/audit/proofs/inclusion?ledger={a}&index=0&tree_size=18446744073709551616"),
        format!("/v1/audit/proofs/consistency?ledger={a}&from={size}&to=1"),
        format!("/v1/audit/proofs/consistency?ledger={a}&from=0&to={}", size + 1),
        format!("/v1/audit/proofs/consistency?ledger={a}&from={big}&to={big}"),
        format!("/v1/audit/proofs/consistency?ledger={a}&from=x&to=1"),
        format!("/v1/audit/proofs/consistency?ledger={a}&to=1"),
    ] {
        let (s, body) = get(&app, &path, &w.ua).await;
        assert_client_error(s, &body, &path);
    }
    // Empty and equal sizes are fine (trivial proofs).
    let (s, p) = get(&app, &format!("/v1/audit/proofs/consistency?ledger={a}&from={size}&to={size}"), &w.ua).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["proof"].as_array().unwrap().len(), 0);
    assert_eq!(p["from_root"], p["to_root"]);
}
