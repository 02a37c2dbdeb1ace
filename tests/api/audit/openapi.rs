//! `/openapi.json` documents the ledger routes, their query parameters and response shapes —
//! and the documented shapes name exactly the fields live responses carry.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use super::{checkpoint, drain, get, setup};

/// The properties of a component schema, with those of the schemas it is `allOf`.
fn properties(doc: &Value, schema: &str) -> BTreeSet<String> {
    let s = &doc["components"]["schemas"][schema];
    assert!(s.is_object(), "schema {schema}");
    let mut out: BTreeSet<String> = s["properties"].as_object().into_iter().flat_map(|p| p.keys().cloned()).collect();
    for part in s["allOf"].as_array().into_iter().flatten() {
        match part["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
            Some(name) => out.extend(properties(doc, name)),
            None => out.extend(part["properties"].as_object().into_iter().flat_map(|p| p.keys().cloned())),
        }
    }
    assert!(!out.is_empty(), "schema {schema} has no properties");
    out
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn openapi_documents_the_ledger_routes_as_they_answer() {
    let (app, w) = setup().await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, params) in [
        ("/v1/audit/keys", &[][..]),
        ("/v1/audit/checkpoint", &["ledger"][..]),
        ("/v1/audit/proofs/inclusion", &["ledger", "index", "tree_size"][..]),
        ("/v1/audit/proofs/consistency", &["ledger", "from", "to"][..]),
        (
            "/v1/audit/events",
            &["ledger", "patient", "actor", "action", "outcome", "from", "to", "break_glass", "cursor", "limit"][..],
        ),
        ("/v1/audit/export", &["format", "ledger", "from", "to"][..]),
        ("/v1/patients/{id}/access-report", &["id", "cursor", "limit"][..]),
    ] {
        let op = paths.get(path).and_then(|p| p.get("get")).unwrap_or_else(|| panic!("GET {path} missing"));
        assert_eq!(op["tags"][0], "audit", "{path}");
        let documented: BTreeSet<&str> = op["parameters"].as_array().map_or(BTreeSet::new(), |ps| {
            ps.iter().filter(|p| p["in"] != "header").map(|p| p["name"].as_str().unwrap()).collect()
        });
        assert_eq!(documented, params.iter().copied().collect(), "{path} parameters (headers aside)");
    }

    // Live answers carry exactly the documented fields.
    assert_eq!(get(&app, &format!("/v1/patients/{}", w.p1), &w.ca1).await.0, StatusCode::OK);
    drain(&app).await;
    let size = checkpoint(&app, w.org_a, &w.ua).await.size;
    let keys_body: Value = app.client.get(app.url("/v1/audit/keys")).send().await.unwrap().json().await.unwrap();
    let a = w.org_a;
    let (_, inclusion) =
        get(&app, &format!("/v1/audit/proofs/inclusion?ledger={a}&index=0&tree_size={size}"), &w.ua).await;
    let (_, consistency) = get(&app, &format!("/v1/audit/proofs/consistency?ledger={a}&from=1&to={size}"), &w.ua).await;
    let (_, events) = get(&app, "/v1/audit/events?limit=1", &w.ua).await;
    let (_, report) = get(&app, &format!("/v1/patients/{}/access-report?limit=1", w.p1), &w.pa1).await;
    for (schema, body) in [
        ("VerifierKeys", &keys_body),
        ("InclusionProof", &inclusion),
        ("ConsistencyProof", &consistency),
        ("EventPage", &events),
        ("LedgerEvent", &events["items"][0]),
        ("AccessReport", &report),
        ("AccessReportLine", &report["items"][0]),
    ] {
        assert_eq!(keys(body), properties(&doc, schema), "{schema} vs {body}");
    }
}
