//! HTTP basics every route inherits: health and readiness, request ids, security headers,
//! JSON errors for anything unmatched, metrics, CORS.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{spawn_app, spawn_app_with};

fn assert_json_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn healthz_and_readyz() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["schema"]["migrations_pending"], 0);
}

#[tokio::test]
async fn readyz_is_503_when_policies_are_not_this_builds() {
    let app = spawn_app().await;
    // Someone edited the policies in the database by hand (or an older binary migrated).
    sqlx::query("UPDATE custos.policy_state SET digest = decode(repeat('ab', 32), 'hex')")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["schema"]["policies_current"], false);
    // Re-running migrate puts them back.
    custos::db::migrate::run(&app.db.pool).await.unwrap();
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.pool.close().await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
}

#[tokio::test]
async fn the_server_generates_every_request_id_and_keeps_the_clients_apart() {
    let app = spawn_app().await;
    let mine = "6f1c1f9e-8f3a-4b7e-9a55-0c2d6a1f4b11";
    let r = app.client.get(app.url("/healthz")).header("X-Request-Id", mine).send().await.unwrap();
    // The client's id is echoed as a correlation id, never taken as the request's id.
    let ours = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(ours, mine);
    assert!(uuid::Uuid::parse_str(&ours).is_ok());
    assert_eq!(r.headers()["x-correlation-id"], mine);
    // Two requests with the same client id get two ids.
    let r = app.client.get(app.url("/healthz")).header("X-Request-Id", mine).send().await.unwrap();
    assert_ne!(r.headers()["x-request-id"].to_str().unwrap(), ours);
    // A value a log line should not carry (quotes, braces are fine; spaces and controls are
    // not) is dropped.
    let r = app.client.get(app.url("/healthz")).header("X-Request-Id", "abc def").send().await.unwrap();
    assert!(r.headers().get("x-correlation-id").is_none());
    assert!(uuid::Uuid::parse_str(r.headers()["x-request-id"].to_str().unwrap()).is_ok());
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = spawn_app().await;
    for path in ["/healthz", "/no/such/route"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        assert!(h["strict-transport-security"].to_str().unwrap().starts_with("max-age="), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_json_error(&r.json().await.unwrap(), "not_found");
    let r = app.client.post(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_json_error(&r.json().await.unwrap(), "method_not_allowed");
}

#[tokio::test]
async fn cors_is_off_by_default_and_follows_configuration() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).header("Origin", "https://evil.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    let app = spawn_app_with(&[("CUSTOS_CORS_ORIGINS", "https://portal.example")]).await;
    let r = app.client.get(app.url("/healthz")).header("Origin", "https://portal.example").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://portal.example");
    let r = app.client.get(app.url("/healthz")).header("Origin", "https://evil.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn serves_https_when_given_a_certificate() {
    let dir = std::env::temp_dir().join(format!("custos-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let app =
        spawn_app_with(&[("CUSTOS_TLS_CERT", cert.to_str().unwrap()), ("CUSTOS_TLS_KEY", key.to_str().unwrap())]).await;
    let https = app.address.replace("http://", "https://");
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let r = client.get(format!("{https}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("strict-transport-security"));
    // Plain HTTP on the TLS port is not served.
    assert!(!app.client.get(app.url("/healthz")).send().await.map(|r| r.status().is_success()).unwrap_or(false));
}

#[tokio::test]
async fn json_bodies_are_limited_and_malformed_ones_rejected_as_json() {
    let app = spawn_app_with(&[("CUSTOS_JSON_LIMIT_BYTES", "2048")]).await;
    let login = app.url("/v1/auth/login");
    let big = format!("{{\"email\":\"a@b.example\",\"password\":\"{}\"}}", "x".repeat(4096));
    let r = app.client.post(&login).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_json_error(&r.json().await.unwrap(), "payload_too_large");
    let r =
        app.client.post(&login).header("content-type", "application/json").body("{\"email\":").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_json_error(&r.json().await.unwrap(), "bad_request");
    let r = app.client.post(&login).header("content-type", "text/plain").body("hello").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_json_error(&r.json().await.unwrap(), "unsupported_media_type");
    // A type error quotes no value back (it could be PHI).
    let r = app
        .client
        .post(&login)
        .header("content-type", "application/json")
        .body("{\"email\": 12345678, \"password\": \"Jane Doe secret\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let text = r.text().await.unwrap();
    assert!(!text.contains("12345678") && !text.contains("Jane"), "{text}");
}
