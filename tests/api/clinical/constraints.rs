//! Values a column would refuse or change are refused by the domain types, with the field and
//! the rule, before anything is written (issue 13, item 7). The catalog-wide mapping of the
//! constraints themselves is tested in tests/db/constraints.rs.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::world::{self, call};
use crate::common::spawn_app;

fn assert_refused(s: StatusCode, body: &Value, field: &str, what: &str) {
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
    assert_eq!(body["error"]["code"], "validation_failed", "{what}: {body}");
    assert_eq!(body["error"]["field"], field, "{what}: {body}");
    let text = body.to_string();
    assert!(!text.contains("_check") && !text.contains("_key") && !text.contains("_fkey"), "{what}: {text}");
}

#[tokio::test]
async fn values_the_columns_would_round_or_refuse_are_422_by_field_and_write_nothing() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    let (p, c) = (w.p1, &w.ca1);
    let meds = format!("/v1/patients/{p}/medications");
    let medication = |dose: Value| {
        json!({ "name": "levothyroxine", "dose": dose, "unit": "mg", "route": "oral", "frequency": "daily",
                "start_date": "2024-01-01" })
    };
    // numeric(12, 4) would round 0.00001 to 0 (then the CHECK named itself in the answer).
    let (s, body) = call(&app, "POST", &meds, c, Some(medication(json!(0.00001)))).await;
    assert_refused(s, &body, "dose", "dose 0.00001");
    assert_eq!(body["error"]["message"], "dose: must have at most 4 decimal places");
    let (s, body) = call(&app, "POST", &meds, c, Some(medication(json!(0.12345)))).await;
    assert_refused(s, &body, "dose", "dose 0.12345 would become 0.1235");
    let (s, list) = call(&app, "GET", &meds, c, None).await;
    assert_eq!((s, list["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "nothing written: {list}");
    // What the column holds exactly is stored exactly.
    let (s, m) = call(&app, "POST", &meds, c, Some(medication(json!(0.0125)))).await;
    assert_eq!((s, m["dose"].as_f64()), (StatusCode::CREATED, Some(0.0125)), "{m}");

    // A prescription's dose is stored formatted (at most 100 characters): a tiny amount used to
    // format as a 100+ character decimal.
    let rx = format!("/v1/patients/{p}/prescriptions");
    let tiny = format!("0.{}1 mg", "0".repeat(120));
    for dose in [tiny.as_str(), "0.00001 mg"] {
        let body = json!({ "medication": "amoxicillin", "dose": dose, "quantity": 30, "refills_allowed": 0 });
        let (s, answer) = call(&app, "POST", &rx, c, Some(body)).await;
        assert_refused(s, &answer, "dose", dose);
    }
    let (_, list) = call(&app, "GET", &rx, c, None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "nothing written: {list}");

    // numeric(5, 1) would round a second decimal of height or weight.
    let info = format!("/v1/patients/{p}/medical-info");
    let (s, body) = call(&app, "PUT", &info, c, Some(json!({ "height_cm": 180.25 }))).await;
    assert_refused(s, &body, "height_cm", "height 180.25");
    let (s, body) = call(&app, "PUT", &info, c, Some(json!({ "weight_kg": 70.05 }))).await;
    assert_refused(s, &body, "weight_kg", "weight 70.05");
}
