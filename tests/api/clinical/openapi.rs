//! `/openapi.json` documents every route the server registers.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::spawn_app;

#[tokio::test]
async fn openapi_covers_the_clinical_identity_and_ops_routes() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/patients", "post"),
        ("/v1/patients/{id}", "get"),
        ("/v1/patients/{id}/allergies", "post"),
        ("/v1/patients/{id}/medications/{mid}/end", "post"),
        ("/v1/patients/{id}/history", "get"),
        ("/v1/prescriptions/{id}/refill", "post"),
        ("/v1/prescriptions/{id}.pdf", "get"),
        ("/v1/conversations", "get"),
        ("/v1/conversations/{id}/messages", "post"),
        ("/v1/patients/{id}/attachments", "post"),
        ("/v1/attachments/{id}", "get"),
        ("/v1/patients/{id}/care-team", "delete"),
        ("/v1/patients/{id}/break-glass", "post"),
        ("/v1/break-glass/{id}/reason", "get"),
        ("/v1/break-glass/allowances", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/me", "get"),
        ("/v1/admin/users", "post"),
        ("/healthz", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in ["Prescription", "Chart", "Allergy", "ErrorBody", "NewConversation"] {
        assert!(schemas.contains_key(s), "schema {s}");
    }
}
