//! The clinical flow end to end, and the rules along the way (409s, 422s, 413/415).

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::world::{self, call, events};
use crate::common::spawn_app;

#[tokio::test]
async fn chart_records_prescriptions_and_rules() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    let p = w.p1;
    let c = &w.ca1;

    let (s, a) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/allergies"),
        c,
        Some(json!({ "substance": "Penicillin", "reaction": "hives", "severity": "severe" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["reaction"], "hives");
    let (s, dup) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/allergies"),
        c,
        Some(json!({ "substance": " penicillin ", "severity": "mild" })),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "duplicate active allergy: {dup}");
    let (s, bad) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/allergies"),
        c,
        Some(json!({ "substance": "latex", "severity": "deadly" })),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["error"]["field"], "severity");

    let (s, m) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/medications"),
        c,
        Some(json!({
        "name": "metformin", "dose": 500, "unit": "mg", "route": "oral", "frequency": "twice daily",
        "start_date": "2024-01-01", "notes": "with food" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let mid = m["id"].as_str().unwrap();
    let (s, ended) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/medications/{mid}/end"),
        c,
        Some(json!({ "end_date": "2024-06-01", "status": "stopped" })),
    )
    .await;
    assert_eq!((s, ended["status"].as_str()), (StatusCode::OK, Some("stopped")), "{ended}");
    let (s, _) = call(&app, "POST", &format!("/v1/patients/{p}/medications/{mid}/end"), c, Some(json!({}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "ending twice");
    let (_, meds) = call(&app, "GET", &format!("/v1/patients/{p}/medications"), c, None).await;
    assert_eq!(meds["items"].as_array().unwrap().len(), 1, "ended medication kept as history");

    let (s, h) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/history"),
        c,
        Some(json!({
        "icd10_code": "e119", "description": "Type 2 diabetes", "diagnosed_on": "2023-05-01", "notes": "diet first" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(h["icd10_code"], "E11.9");
    for (body, field) in [
        (json!({ "icd10_code": "11.9", "diagnosed_on": "2023-05-01" }), "icd10_code"),
        (json!({ "icd10_code": "I10", "diagnosed_on": "2023-05-01", "resolved_on": "2023-04-01" }), "resolved_on"),
        (json!({ "icd10_code": "I10", "diagnosed_on": "2023-02-30" }), "diagnosed_on"),
    ] {
        let (s, e) = call(&app, "POST", &format!("/v1/patients/{p}/history"), c, Some(body)).await;
        assert_eq!((s, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{e}");
    }

    let (s, mi) = call(
        &app,
        "PUT",
        &format!("/v1/patients/{p}/medical-info"),
        c,
        Some(json!({ "blood_type": "O+", "height_cm": 170.5, "weight_kg": 70, "emergency_contact": "Sam 555" })),
    )
    .await;
    assert_eq!((s, mi["blood_type"].as_str()), (StatusCode::OK, Some("o_pos")), "{mi}");
    let (s, e) =
        call(&app, "PUT", &format!("/v1/patients/{p}/medical-info"), c, Some(json!({ "height_cm": 400 }))).await;
    assert_eq!((s, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("height_cm")));

    // Prescriptions: default expiry one year, refill limits, cancel with a reason.
    let (s, rx) = call(&app, "POST", &format!("/v1/patients/{p}/prescriptions"), c, Some(json!({
        "medication": "amoxicillin", "dose": "500 mg", "quantity": 30, "refills_allowed": 1, "instructions": "1 cap tid" }))).await;
    assert_eq!(s, StatusCode::CREATED, "{rx}");
    assert_eq!(rx["status"], "active");
    let issued = chrono::DateTime::parse_from_rfc3339(rx["issued_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(rx["expires_at"].as_str().unwrap()).unwrap();
    assert!((expires - issued).num_days() >= 365 && (expires - issued).num_days() <= 366);
    let id = rx["id"].as_str().unwrap();
    let (s, r1) = call(&app, "POST", &format!("/v1/prescriptions/{id}/refill"), c, None).await;
    assert_eq!((s, r1["refills_used"].as_i64()), (StatusCode::OK, Some(1)), "{r1}");
    assert_eq!(r1["status"], "completed");
    let (s, r2) = call(&app, "POST", &format!("/v1/prescriptions/{id}/refill"), c, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{r2}");
    assert!(r2["error"]["message"].as_str().unwrap().contains("completed"), "{r2}");

    let (_, rx2) = call(&app, "POST", &format!("/v1/patients/{p}/prescriptions"), c, Some(json!({
        "medication": "lisinopril", "dose": "10 mg", "quantity": 90, "refills_allowed": 0, "expires_at": "2020-01-01" }))).await;
    assert_eq!(rx2["error"]["field"], "expires_at", "{rx2}");
    let (_, rx2) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/prescriptions"),
        c,
        Some(json!({
        "medication": "lisinopril", "dose": "10 mg", "quantity": 90, "refills_allowed": 0 })),
    )
    .await;
    let id2 = rx2["id"].as_str().unwrap();
    let (s, e) = call(&app, "POST", &format!("/v1/prescriptions/{id2}/refill"), c, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["error"]["message"].as_str().unwrap().contains("no refills remain"), "{e}");
    for (q, r, field) in [(0, 0, "quantity"), (10, 12, "refills_allowed")] {
        let (s, e) = call(
            &app,
            "POST",
            &format!("/v1/patients/{p}/prescriptions"),
            c,
            Some(json!({
            "medication": "x", "dose": "1 mg", "quantity": q, "refills_allowed": r })),
        )
        .await;
        assert_eq!((s, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{e}");
    }
    let (_, rx3) = call(
        &app,
        "POST",
        &format!("/v1/patients/{p}/prescriptions"),
        c,
        Some(json!({
        "medication": "atorvastatin", "dose": "20 mg", "quantity": 30, "refills_allowed": 5 })),
    )
    .await;
    let id3 = rx3["id"].as_str().unwrap();
    // Expired (moved into the past directly): refill refused with the reason.
    let id3_uuid: Uuid = id3.parse().unwrap();
    crate::common::rewrite_history(
        &app.pool,
        "UPDATE prescriptions SET issued_at = now() - interval '2 days', expires_at = now() - interval '1 day' WHERE id = $1",
        &[id3_uuid],
    )
    .await;
    let (s, e) = call(&app, "POST", &format!("/v1/prescriptions/{id3}/refill"), c, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["error"]["message"].as_str().unwrap().contains("expired"), "{e}");
    let (s, e) = call(&app, "POST", &format!("/v1/prescriptions/{id2}/cancel"), c, Some(json!({ "reason": "" }))).await;
    assert_eq!((s, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")));
    let (s, cx) =
        call(&app, "POST", &format!("/v1/prescriptions/{id2}/cancel"), c, Some(json!({ "reason": "switched drug" })))
            .await;
    assert_eq!((s, cx["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{cx}");
    let (s, _) =
        call(&app, "POST", &format!("/v1/prescriptions/{id2}/cancel"), c, Some(json!({ "reason": "again" }))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, e) = call(&app, "POST", &format!("/v1/prescriptions/{id2}/refill"), c, None).await;
    assert!(s == StatusCode::CONFLICT && e["error"]["message"].as_str().unwrap().contains("cancelled"), "{e}");

    // The chart: everything active in one response; the admin sees demographics only.
    let (s, chart) = call(&app, "GET", &format!("/v1/patients/{p}"), c, None).await;
    assert_eq!(s, StatusCode::OK, "{chart}");
    assert_eq!(chart["given_name"], "Pat");
    assert_eq!(chart["birth_date"], "1980-02-29");
    assert_eq!(chart["allergies"].as_array().unwrap().len(), 1);
    assert_eq!(chart["medications"].as_array().unwrap().len(), 0, "only active medications");
    assert_eq!(chart["history"][0]["notes"], "diet first");
    assert_eq!(chart["medical_info"]["emergency_contact"], "Sam 555");
    assert_eq!(chart["prescriptions"].as_array().unwrap().len(), 0, "completed, cancelled and expired are not active");
    let (s, admin_view) = call(&app, "GET", &format!("/v1/patients/{p}"), &w.aa, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(admin_view["family_name"], "Testperson");
    for k in ["allergies", "medications", "history", "prescriptions", "medical_info"] {
        assert!(admin_view.get(k).is_none(), "admin must not see {k}: {admin_view}");
    }

    // PDF, audited as an export.
    let resp =
        app.client.get(app.url(&format!("/v1/prescriptions/{id}.pdf"))).bearer_auth(&w.pa1.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let sum = resp.headers()["x-checksum-sha256"].to_str().unwrap().to_owned();
    let pdf = resp.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = super::pdf::pdftotext(&pdf);
    assert!(text.contains(id) && text.contains(&sum), "id and checksum printed on the page");
    let ev = events(&app, w.pa1.id).await;
    assert!(ev.iter().any(|e| e.0 == "export" && e.1 == "prescription_pdf" && e.2 == "success"), "{ev:?}");
}
