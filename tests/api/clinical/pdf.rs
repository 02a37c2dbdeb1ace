//! The prescription PDF prints stored text exactly, in any script the embedded fonts cover
//! (issue 17, item 6): `pdftotext` (poppler-utils, installed by `.ci/run`) reads back a
//! non-Latin name and `≥`, and the printed checksum recomputes from the page's text.

use std::io::Write as _;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::world::{self, call};
use crate::common::spawn_app;

/// The PDF's text as poppler's `pdftotext` extracts it.
pub fn pdftotext(pdf: &[u8]) -> String {
    let mut child = Command::new("pdftotext")
        .args(["-enc", "UTF-8", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pdftotext (poppler-utils) must be installed: .ci/run installs it");
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_non_latin_name_and_symbols_print_exactly_and_the_checksum_recomputes_from_the_page() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    let body = json!({ "mrn": "PDF-1", "given_name": "Łucja", "family_name": "Nguyễn 王", "birth_date": "1990-07-14",
                       "sex": "female" });
    let (s, p) = app.post("/v1/patients", Some(&w.aa.token), body).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let patient: uuid::Uuid = p["id"].as_str().unwrap().parse().unwrap();
    world::assign(&app, &w.aa, patient, &w.ca1).await;
    let rx = json!({ "medication": "amoxicillin", "dose": "500 mg", "quantity": 21, "refills_allowed": 0,
                     "instructions": "one capsule every ≥ 8 h" });
    let (s, rx) = call(&app, "POST", &format!("/v1/patients/{patient}/prescriptions"), &w.ca1, Some(rx)).await;
    assert_eq!(s, StatusCode::CREATED, "{rx}");
    let id = rx["id"].as_str().unwrap();

    let resp = app.client.get(app.url(&format!("/v1/prescriptions/{id}.pdf"))).bearer_auth(&w.ca1.token).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let sum = resp.headers()["x-checksum-sha256"].to_str().unwrap().to_owned();
    let pdf = resp.bytes().await.unwrap();
    assert!(pdf.len() < 100_000, "only the glyphs the page uses are embedded: {} bytes", pdf.len());
    let text = pdftotext(&pdf);
    assert!(text.contains("Patient: Łucja Nguyễn 王\n"), "{text}");
    assert!(text.contains("Sig: one capsule every ≥ 8 h\n"), "{text}");
    assert!(text.contains(&format!("Checksum SHA-256: {sum}")), "{text}");

    // The checksum over the printed fields, from nothing but the page.
    let labels = [
        "Prescription",
        "Patient",
        "Date of birth",
        "MRN",
        "Prescriber",
        "Medication",
        "Dose",
        "Quantity",
        "Sig",
        "Refills",
        "Issued",
        "Expires",
        "Status",
    ];
    let mut h = Sha256::new();
    for label in labels {
        let prefix = format!("{label}: ");
        let value = text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("{label}"));
        h.update(value.as_bytes());
        h.update(b"\n");
    }
    assert_eq!(hex::encode(h.finalize()), sum, "checksum recomputed from the page");
}
