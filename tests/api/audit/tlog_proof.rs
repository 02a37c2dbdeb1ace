//! Single-event proofs: `GET /v1/ledgers/{ledger}/events/{index}/proof` serves a
//! `c2sp.org/tlog-proof@v1` file that verifies offline (`custos verify --proof FILE --key
//! KEY`) for exactly the event it carries; each access-report line links to its proof; only
//! the ledger's auditors and admins get one.

use custos::audit::signing::LedgerSigner;
use custos::audit::tlog_proof::TlogProof;
use custos::cli::ledger::{Cosigned, verify_proofs};
use reqwest::StatusCode;

use super::world::call;
use super::{ORIGIN, drain, get, get_raw, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_report_line_links_to_a_proof_that_verifies_offline() {
    let (app, w) = setup().await;
    assert_eq!(call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await.0, StatusCode::OK);
    drain(&app).await;

    let (s, report) = get(&app, &format!("/v1/patients/{}/access-report?limit=1000", w.p1), &w.pa1).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    let line = report["items"].as_array().unwrap().iter().find(|i| i["actor_id"] == w.ca1.id.to_string()).unwrap();
    let url = line["proof_url"].as_str().unwrap();
    assert_eq!(url, format!("/v1/ledgers/{}/events/{}/proof", w.org_a, line["seq"]));

    // Patients and clinicians get no proof; another organization's auditor gets a 404.
    assert_eq!(get_raw(&app, url, &w.pa1).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get_raw(&app, url, &w.ca1).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get_raw(&app, url, &w.ab).await.0, StatusCode::NOT_FOUND);
    let beyond = format!("/v1/ledgers/{}/events/999999/proof", w.org_a);
    assert_eq!(get_raw(&app, &beyond, &w.ua).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    let (s, ct, text) = get_raw(&app, url, &w.ua).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(ct.starts_with("text/plain"));
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    let proof = TlogProof::parse(&text).unwrap();
    assert_eq!(proof.index, line["seq"].as_u64().unwrap());
    let event = String::from_utf8(proof.extra.clone().unwrap()).unwrap();
    assert!(event.contains(&w.ca1.id.to_string()), "the proof carries the event: {event}");

    // Offline, with only the published key: the file verifies; an edited one does not.
    let key = LedgerSigner::new(ORIGIN, &app.keys).unwrap().verifier().encode();
    let dir = std::env::temp_dir().join(format!("custos-proof-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.tlog-proof");
    std::fs::write(&good, &text).unwrap();
    assert!(verify_proofs(std::slice::from_ref(&good), std::slice::from_ref(&key), &Cosigned::default()).is_ok());
    let mut edited = proof.clone();
    let forged = event.replacen(&w.ca1.id.to_string(), &w.ca2.id.to_string(), 1);
    edited.extra = Some(forged.into_bytes());
    let bad = dir.join("bad.tlog-proof");
    std::fs::write(&bad, edited.encode()).unwrap();
    assert!(verify_proofs(&[bad], std::slice::from_ref(&key), &Cosigned::default()).is_err());
    let stranger = custos::audit::checkpoint::NoteSigner::generate(ORIGIN).unwrap().verifier().encode();
    assert!(verify_proofs(&[good], &[stranger], &Cosigned::default()).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
