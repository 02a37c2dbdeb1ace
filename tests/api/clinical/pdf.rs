//! The prescription PDF prints stored text exactly, in any script the embedded fonts cover
//! (issue 17, item 6): `pdftotext` (poppler-utils, installed by `.ci/run`) reads back a
//! non-Latin name and `≥`, the prescriber's full identification and the signature statement;
//! the printed document hash recomputes from the API's data; `qpdf --check` passes.

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

/// `qpdf --check` on the PDF: structure, cross-reference table and streams are valid.
fn qpdf_check(pdf: &[u8]) {
    let path = std::env::temp_dir().join(format!("custos-rx-{}.pdf", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, pdf).unwrap();
    let out =
        Command::new("qpdf").arg("--check").arg(&path).output().expect("qpdf must be installed: .ci/run installs it");
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success(),
        "qpdf --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn prescriber(dea: Option<&str>) -> serde_json::Value {
    json!({ "prescriber": { "full_name": "Maria Łopez-Silva", "credentials": "MD", "npi": "1234567893",
        "dea_number": dea, "practice_name": "Harbor Clinic", "practice_address": "1 Main St\nSpringfield, IL 62701",
        "practice_phone": "+1 555 010 0199" } })
}

#[tokio::test]
async fn a_prescription_names_its_prescriber_fully_prints_exactly_and_its_hash_recomputes_from_the_api() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    let profile = format!("/v1/admin/users/{}/profile", w.ca1.id);

    // Invalid registry numbers are refused, naming the field.
    for (field, body) in [
        (
            "npi",
            json!({ "prescriber": { "full_name": "X", "npi": "1234567890", "practice_name": "P", "practice_address": "A", "practice_phone": "+15550100199" } }),
        ),
        ("dea_number", prescriber(Some("AB1234564"))),
        (
            "practice_phone",
            json!({ "prescriber": { "full_name": "X", "npi": "1234567893", "practice_name": "P", "practice_address": "A", "practice_phone": "nope" } }),
        ),
    ] {
        let (s, e) = call(&app, "PUT", &profile, &w.aa, Some(body)).await;
        assert_eq!((s, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{e}");
    }
    // Clinicians cannot set profiles; admins can, for clinicians.
    assert_eq!(call(&app, "PUT", &profile, &w.ca1, Some(prescriber(None))).await.0, StatusCode::FORBIDDEN);
    let (s, out) = call(&app, "PUT", &profile, &w.aa, Some(prescriber(None))).await;
    assert_eq!((s, out["prescriber_set"].as_bool()), (StatusCode::OK, Some(true)), "{out}");

    let body = json!({ "mrn": "PDF-1", "given_name": "Łucja", "family_name": "Nguyễn 王", "birth_date": "1990-07-14",
                       "sex": "female", "address": "12 Rue de la Paix, 75002 Paris" });
    let (s, p) = app.post("/v1/patients", Some(&w.aa.token), body).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let patient: uuid::Uuid = p["id"].as_str().unwrap().parse().unwrap();
    world::assign(&app, &w.aa, patient, &w.ca1).await;
    let rx = json!({ "medication": "oxycodone", "dose": "5 mg", "form": "tablet", "schedule": "II", "quantity": 30,
                     "refills_allowed": 0, "instructions": "one tablet every ≥ 8 h as needed for pain" });
    // A controlled substance needs the prescriber's DEA number.
    let path = format!("/v1/patients/{patient}/prescriptions");
    let (s, e) = call(&app, "POST", &path, &w.ca1, Some(rx.clone())).await;
    assert_eq!((s, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("schedule")), "{e}");
    assert_eq!(call(&app, "PUT", &profile, &w.aa, Some(prescriber(Some("ab1234563")))).await.0, StatusCode::OK);
    let (s, rx) = call(&app, "POST", &path, &w.ca1, Some(rx)).await;
    assert_eq!(s, StatusCode::CREATED, "{rx}");
    assert_eq!((rx["schedule"].as_str(), rx["form"].as_str()), (Some("CII"), Some("tablet")));
    let id = rx["id"].as_str().unwrap();

    let resp = app.client.get(app.url(&format!("/v1/prescriptions/{id}.pdf"))).bearer_auth(&w.ca1.token).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let sum = resp.headers()["x-checksum-sha256"].to_str().unwrap().to_owned();
    let pdf = resp.bytes().await.unwrap();
    assert!(pdf.len() < 100_000, "only the glyphs the page uses are embedded: {} bytes", pdf.len());
    qpdf_check(&pdf);
    let text = pdftotext(&pdf);
    for expected in [
        "Patient: Łucja Nguyễn 王\n",
        "Directions: one tablet every ≥ 8 h as needed for pain\n",
        "Prescriber: Maria Łopez-Silva, MD\n",
        "NPI: 1234567893\n",
        "DEA: AB1234563\n",
        "Practice: Harbor Clinic\n",
        "Practice address: 1 Main St\n",
        "Springfield, IL 62701\n",
        "Practice phone: +15550100199\n",
        "Patient address: 12 Rue de la Paix, 75002 Paris\n",
        "Quantity: 30 (thirty)\n",
        "Schedule: CII\n",
        "Electronically signed by Maria Łopez-Silva, MD (NPI 1234567893) at ",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    // The statement's hash is on the page (it may wrap: compare without line breaks).
    assert!(text.replace('\n', " ").contains(&format!("document SHA-256 {sum}")), "{text}");

    // The document hash recomputes from the API's data alone (src/clinical/pdf.rs says how).
    let at = |k: &str| rx[k].as_str().unwrap()[..10].to_owned();
    let values = [
        id.to_owned(),
        at("issued_at"),
        at("expires_at"),
        rx["status"].as_str().unwrap().to_owned(),
        "Maria Łopez-Silva, MD".into(),
        "1234567893".into(),
        "AB1234563".into(),
        "Harbor Clinic".into(),
        "1 Main St\nSpringfield, IL 62701".into(),
        "+15550100199".into(),
        "Łucja Nguyễn 王".into(),
        "1990-07-14".into(),
        "12 Rue de la Paix, 75002 Paris".into(),
        "PDF-1".into(),
        "oxycodone".into(),
        "5 mg".into(),
        "tablet".into(),
        "CII".into(),
        rx["instructions"].as_str().unwrap().to_owned(),
        "30 (thirty)".into(),
        "0 (zero) allowed, 0 used".into(),
        "electronic".into(),
    ];
    let mut h = Sha256::new();
    for v in values {
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    assert_eq!(hex::encode(h.finalize()), sum, "document hash recomputed from the API");
}
