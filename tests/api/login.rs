//! Login: no user enumeration, lockout and its expiry, legacy bcrypt re-hash, restricted
//! sessions, rate limit, malformed input.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_email_bad_password_locked_and_disabled_look_the_same() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, locked_otp) = app.create_user(&admin, "locked@general.example", "clinician").await;
    let (disabled_id, disabled_otp) = app.create_user(&admin, "disabled@general.example", "clinician").await;
    for _ in 0..5 {
        app.login("locked@general.example", "not the password at all").await;
    }
    let (s, _) = app.post(&format!("/v1/admin/users/{disabled_id}/disable"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let responses = [
        app.login("nobody@general.example", "whatever password 123").await,
        app.login(&admin.email, "wrong password entirely").await,
        app.login("locked@general.example", &locked_otp).await, // correct password, locked
        app.login("disabled@general.example", &disabled_otp).await, // correct password, disabled
        app.login("not-an-email", "whatever").await,
    ];
    for (status, body) in &responses {
        assert_eq!(*status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, &responses[0].1, "every failure has the same body");
    }
    assert_eq!(responses[0].1["error"]["code"], "unauthorized");
    // The reason is recorded internally, never sent.
    for reason in ["unknown user", "bad password", "account locked", "account disabled"] {
        assert!(app.has_event("login_failed", "denied", reason).await, "audit reason {reason}");
        assert!(!responses.iter().any(|(_, b)| b.to_string().contains(reason)));
    }
}

#[tokio::test]
async fn five_failures_lock_for_fifteen_minutes_then_login_works_again() {
    let app = spawn_app().await;
    let (_, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    for _ in 0..4 {
        assert_eq!(app.login(&email, "bad bad bad bad").await.0, StatusCode::UNAUTHORIZED);
    }
    // Four failures do not lock: the right password still works (and resets the counter).
    assert_eq!(app.login(&email, &otp).await.0, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(app.login(&email, "bad bad bad bad").await.0, StatusCode::UNAUTHORIZED);
    }
    assert!(app.has_event("security", "success", "account locked after 5").await);
    assert_eq!(app.login(&email, &otp).await.0, StatusCode::UNAUTHORIZED, "locked");
    app.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(app.login(&email, &otp).await.0, StatusCode::UNAUTHORIZED, "still locked at 14 min");
    app.clock.advance(Duration::from_secs(2 * 60));
    let (s, body) = app.login(&email, &otp).await;
    assert_eq!(s, StatusCode::OK, "lock expired: {body}");
}

#[tokio::test]
async fn admin_unlock_lifts_a_lock() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (id, otp) = app.create_user(&admin, "c@general.example", "clinician").await;
    for _ in 0..5 {
        app.login("c@general.example", "bad bad bad bad").await;
    }
    assert_eq!(app.login("c@general.example", &otp).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post(&format!("/v1/admin/users/{id}/unlock"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.login("c@general.example", &otp).await.0, StatusCode::OK);
    assert!(app.has_event("admin", "success", "user unlocked").await);
}

#[tokio::test]
async fn legacy_bcrypt_hash_is_rehashed_to_argon2id_at_login() {
    let app = spawn_app().await;
    let (_, email, _) = app.bootstrap("Legacy", "old@legacy.example").await;
    let legacy = bcrypt::hash("imported legacy password 77", 4).unwrap();
    sqlx::query("UPDATE users SET password_hash = $1").bind(&legacy).execute(&app.db.pool).await.unwrap();
    let (s, _) = app.login(&email, "imported legacy password 77").await;
    assert_eq!(s, StatusCode::OK);
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(&app.db.pool).await.unwrap();
    assert!(stored.starts_with("$argon2id$"), "re-hashed: {stored}");
    assert_eq!(app.login(&email, "imported legacy password 77").await.0, StatusCode::OK);
    assert!(app.has_event("update", "success", "password hash upgraded").await);
}

#[tokio::test]
async fn restricted_sessions_must_change_password_then_enrol_mfa() {
    let app = spawn_app().await;
    let (_, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let (_, body) = app.login(&email, &otp).await;
    assert_eq!(body["password_change_required"], true);
    assert_eq!(body["mfa_enrollment_required"], true);
    let token = body["access_token"].as_str().unwrap();
    let (s, b) = app.get("/v1/admin/users", token).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("password_change_required")));
    let (s, b) = app.post("/v1/me/mfa/enroll", Some(token), json!({})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("password_change_required")));
    let (s, me) = app.get("/v1/me", token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["email"], "admin@clinic.example");
    assert_eq!(me["must_change_password"], true);

    // A weak new password: 422 listing the reasons.
    let (s, b) =
        app.post("/v1/me/password", Some(token), json!({ "current_password": otp, "new_password": "password" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let codes: Vec<&str> =
        b["error"]["violations"].as_array().unwrap().iter().map(|v| v["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"password_too_short") && codes.contains(&"password_too_weak"), "{b}");
    let (s, b) = app
        .post(
            "/v1/me/password",
            Some(token),
            json!({ "current_password": otp, "new_password": "admin-clinic-is-my-long-passphrase" }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b.to_string().contains("password_contains_email"), "{b}");
    let (s, b) = app
        .post(
            "/v1/me/password",
            Some(token),
            json!({ "current_password": "nope", "new_password": super::helpers::NEW_PASSWORD }),
        )
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("invalid_current_password")));

    let (s, _) = app
        .post(
            "/v1/me/password",
            Some(token),
            json!({ "current_password": otp, "new_password": super::helpers::NEW_PASSWORD }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.get("/v1/admin/users", token).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("mfa_enrollment_required")));
    let (s, _) = app.post("/v1/me/mfa/enroll", Some(token), json!({})).await;
    assert_eq!(s, StatusCode::OK, "enrolment is allowed in the restricted session");
}

#[tokio::test]
async fn auth_endpoints_are_rate_limited_per_ip_with_retry_after() {
    let app = spawn_app_with(&[("CUSTOS_AUTH_RATE_PER_MINUTE", "3")]).await;
    for _ in 0..3 {
        assert_eq!(app.login("x@y.example", "whatever pass").await.0, StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "x@y.example", "password": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Other routes are not limited.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_auth_requests_get_4xx_json() {
    let app = spawn_app().await;
    let (s, b) = app.post("/v1/auth/login", None, json!({ "email": "a@b.example" })).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    let resp = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (s, _) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": "garbage" })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post("/v1/auth/mfa/verify", None, json!({ "mfa_token": "x", "code": "123456" })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = app
        .post("/v1/auth/register", None, json!({ "invite_code": "x", "email": "p@q.example", "password": "p" }))
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    let (s, _) = app.send(reqwest::Method::GET, "/v1/me", Some("not.a.jwt"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app.send(reqwest::Method::GET, "/v1/me", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
