//! Encryption at rest: a sentinel written through the API into every sealed field appears
//! nowhere in the database — not in any text, json, bytea or array column of any table, and
//! not in a `pg_dump` (plain or hex-encoded). Swapping ciphertexts between rows makes the read
//! fail safely: an integrity error, recorded in the audit trail, and no plaintext served.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::world::{self, call, events};
use crate::common::{TestApp, spawn_app};

/// Columns that could hold text: (schema, table, column, data type).
async fn text_like_columns(app: &TestApp) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "SELECT c.table_schema::text, c.table_name::text, c.column_name::text, c.data_type::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' \
         WHERE c.table_schema IN ('public', 'custos') \
           AND c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'ARRAY', 'USER-DEFINED', 'inet')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn occurrences(app: &TestApp, needles: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for (schema, table, column, ty) in text_like_columns(app).await {
        let pred = if ty == "bytea" {
            format!("position(convert_to($1, 'UTF8') in \"{column}\") > 0")
        } else {
            format!("\"{column}\"::text ILIKE '%' || $1 || '%'")
        };
        for n in needles {
            let sql = format!("SELECT count(*) FROM \"{schema}\".\"{table}\" WHERE {pred}");
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(n).fetch_one(&app.pool).await.unwrap();
            if count > 0 {
                hits.push(format!("{schema}.{table}.{column} contains {n}"));
            }
        }
    }
    hits
}

#[tokio::test]
async fn no_sealed_value_rests_in_plaintext() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    let tag: String = Uuid::new_v4().simple().to_string().chars().filter(|c| c.is_ascii_alphabetic()).take(8).collect();
    let s = format!("Zqxsentinel{tag}");
    let (c, p) = (&w.ca1, &w.pa1);
    let (st, pat) = call(&app, "POST", "/v1/patients", c, Some(json!({
        "mrn": format!("{s}-1"), "given_name": s, "family_name": s, "birth_date": "1931-07-17", "sex": "other",
        "ssn": "987-65-4321", "phone": "+1 987 654 3219", "email": format!("{s}@mail.example"), "address": format!("{s} Road") }))).await;
    assert_eq!(st, StatusCode::CREATED, "{pat}");
    let pid: Uuid = pat["id"].as_str().unwrap().parse().unwrap();
    crate::common::rewrite_history(&app.pool, "UPDATE patients SET user_id = NULL WHERE id = $1", &[w.p1]).await;
    crate::common::rewrite_history(&app.pool, "UPDATE patients SET user_id = $1 WHERE id = $2", &[p.id, pid]).await;
    let writes = [
        ("PUT", format!("/v1/patients/{pid}/medical-info"), json!({ "emergency_contact": s })),
        (
            "POST",
            format!("/v1/patients/{pid}/allergies"),
            json!({ "substance": "latex", "reaction": s, "severity": "mild" }),
        ),
        (
            "POST",
            format!("/v1/patients/{pid}/medications"),
            json!({ "name": "m", "dose": 1, "unit": "mg", "route": "oral", "frequency": "daily", "start_date": "2024-01-01", "notes": s }),
        ),
        (
            "POST",
            format!("/v1/patients/{pid}/history"),
            json!({ "icd10_code": "I10", "diagnosed_on": "2024-01-01", "notes": s }),
        ),
    ];
    for (m, path, body) in writes {
        let (st, b) = call(&app, m, &path, c, Some(body)).await;
        assert!(st.is_success(), "{path}: {b}");
    }
    let (_, rx) = call(
        &app,
        "POST",
        &format!("/v1/patients/{pid}/prescriptions"),
        c,
        Some(json!({ "medication": "m", "dose": "1 mg", "quantity": 1, "refills_allowed": 0, "instructions": s })),
    )
    .await;
    let (st, _) = call(
        &app,
        "POST",
        &format!("/v1/prescriptions/{}/cancel", rx["id"].as_str().unwrap()),
        c,
        Some(json!({ "reason": s })),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, conv) = call(&app, "POST", &format!("/v1/patients/{pid}/conversations"), p,
        Some(json!({ "subject": s, "message": s, "symptoms": [{ "name": "pain", "severity": 3, "onset": "2024-01-01" }] }))).await;
    assert_eq!(st, StatusCode::CREATED, "{conv}");
    let (st, _) = call(
        &app,
        "POST",
        &format!("/v1/conversations/{}/messages", conv["id"].as_str().unwrap()),
        c,
        Some(json!({ "body": s })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let resp = app
        .client
        .post(app.url(&format!("/v1/patients/{pid}/attachments?filename={s}.txt")))
        .bearer_auth(&p.token)
        .header("content-type", "text/plain")
        .body(format!("contents {s}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // The API gives everything back…
    let (_, chart) = call(&app, "GET", &format!("/v1/patients/{pid}"), c, None).await;
    assert_eq!(chart["given_name"], s.as_str());
    assert_eq!(chart["allergies"][0]["reaction"], s.as_str());
    // …the database holds none of it.
    let needles = vec![s.clone(), s.to_uppercase(), "987-65-4321".into(), "19876543219".into(), "1931-07-17".into()];
    // Positive control: a plain column (allergy substance) is found by the same scan.
    assert!(!occurrences(&app, &["latex".to_owned()]).await.is_empty(), "the scan finds plaintext");
    let hits = occurrences(&app, &needles).await;
    assert!(hits.is_empty(), "plaintext at rest:\n{}", hits.join("\n"));

    let out = std::process::Command::new("pg_dump")
        .args(["--no-owner", "--dbname", app.db.url.split('?').next().unwrap()])
        .output()
        .expect("pg_dump is installed");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    let dump = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(dump.contains("copy public.patients") && dump.contains("latex"), "the dump has the data");
    for n in &needles {
        assert!(!dump.contains(&n.to_lowercase()), "{n} in pg_dump");
        assert!(!dump.contains(&hex::encode(n.as_bytes())), "{n} hex-encoded in pg_dump");
        assert!(!dump.contains(&hex::encode(n.to_uppercase().as_bytes())), "{n} (upper) hex-encoded in pg_dump");
    }
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_fails_safely_and_is_recorded() {
    let app = spawn_app().await;
    let w = world::build(&app).await;
    for (sub, reaction) in [("peanut", "SECRET-REACTION-ONE"), ("latex", "SECRET-REACTION-TWO")] {
        let (s, b) = call(
            &app,
            "POST",
            &format!("/v1/patients/{}/allergies", w.p1),
            &w.ca1,
            Some(json!({ "substance": sub, "reaction": reaction, "severity": "mild" })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    sqlx::query(
        "WITH a AS (SELECT id, reaction_enc, row_number() OVER (ORDER BY id) AS n FROM allergies WHERE patient_id = $1) \
         UPDATE allergies t SET reaction_enc = o.reaction_enc FROM a s JOIN a o ON o.n = 3 - s.n WHERE t.id = s.id",
    )
    .bind(w.p1)
    .execute(&app.pool)
    .await
    .unwrap();
    let resp = app
        .client
        .get(app.url(&format!("/v1/patients/{}/allergies", w.p1)))
        .bearer_auth(&w.ca1.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = resp.text().await.unwrap();
    assert!(body.contains("data_integrity"), "{body}");
    assert!(!body.contains("SECRET-REACTION"), "no plaintext served: {body}");
    let ev = events(&app, w.ca1.id).await;
    let last = ev.last().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str(), last.2.as_str()), ("read", "allergy", "error"));
    assert_eq!(last.4.as_deref(), Some("integrity check failed: allergies.reaction_enc"));
    // The chart read fails the same way (no partial chart).
    let (s, body) = call(&app, "GET", &format!("/v1/patients/{}", w.p1), &w.ca1, None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("data_integrity")));
}
