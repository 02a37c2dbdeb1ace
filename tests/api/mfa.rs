//! Second factor: enrolment URI, TOTP replay, the ±1 step window, recovery codes (single
//! use, regeneration invalidates the old set), MFA token single use and expiry, lockout.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, spawn_app};

async fn challenge(app: &TestApp, email: &str, password: &str) -> Value {
    let (s, body) = app.login(email, password).await;
    assert_eq!(s, StatusCode::OK);
    body["mfa_token"].clone()
}

async fn verify(app: &TestApp, token: &Value, code: &str) -> StatusCode {
    app.post("/v1/auth/mfa/verify", None, json!({ "mfa_token": token, "code": code })).await.0
}

#[tokio::test]
async fn enrolment_gives_an_otpauth_uri_and_confirm_unrestricts_the_session() {
    let app = spawn_app().await;
    let (_, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let (_, body) = app.login(&email, &otp).await;
    let token = body["access_token"].as_str().unwrap();
    app.post(
        "/v1/me/password",
        Some(token),
        json!({ "current_password": otp, "new_password": super::helpers::NEW_PASSWORD }),
    )
    .await;
    let (_, enrol) = app.post("/v1/me/mfa/enroll", Some(token), json!({})).await;
    let uri = enrol["otpauth_uri"].as_str().unwrap();
    let secret_b32 = enrol["secret_base32"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Custos:admin%40clinic.example?")
            || uri.starts_with("otpauth://totp/Custos:admin@clinic.example?"),
        "{uri}"
    );
    assert!(uri.contains("issuer=Custos") && uri.contains(&format!("secret={secret_b32}")), "{uri}");
    let secret = custos::auth::totp::TotpSecret::from_base32(secret_b32).unwrap();
    // The secret is stored sealed, not in the clear.
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_enc FROM mfa_credentials").fetch_one(&app.db.pool).await.unwrap();
    assert!(!stored.windows(secret.as_bytes().len()).any(|w| w == secret.as_bytes()));

    let (s, _) = app.post("/v1/me/mfa/confirm", Some(token), json!({ "code": "000000" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a wrong code does not confirm");
    let (s, body) = app.post("/v1/me/mfa/confirm", Some(token), json!({ "code": app.totp(&secret, 0) })).await;
    assert_eq!(s, StatusCode::OK);
    let codes = body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    assert!(codes.iter().all(|c| c.as_str().unwrap().replace('-', "").len() == 16), "80-bit codes");
    let (s, me) = app.get("/v1/admin/users", token).await;
    assert_eq!(s, StatusCode::OK, "session unrestricted after confirmation: {me}");
    let (_, me) = app.get("/v1/me", token).await;
    assert_eq!(me["mfa_enabled"], true);
    let (s, _) = app.post("/v1/me/mfa/enroll", Some(token), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "no silent re-enrolment once enabled");
}

#[tokio::test]
async fn a_totp_code_is_accepted_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let code = app.fresh_totp(&admin.secret);
    let first = challenge(&app, &admin.email, &admin.password).await;
    assert_eq!(verify(&app, &first, &code).await, StatusCode::OK);
    let second = challenge(&app, &admin.email, &admin.password).await;
    assert_eq!(verify(&app, &second, &code).await, StatusCode::UNAUTHORIZED, "replay");
    assert!(app.has_event("mfa", "denied", "bad or replayed MFA code").await);
    // The used MFA token is single use too, even with a fresh code.
    let fresh = app.fresh_totp(&admin.secret);
    assert_eq!(verify(&app, &first, &fresh).await, StatusCode::UNAUTHORIZED);
    assert_eq!(verify(&app, &second, &fresh).await, StatusCode::OK);
}

#[tokio::test]
async fn totp_accepts_one_step_either_side_and_never_an_older_step() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    app.clock.advance(Duration::from_secs(120));
    app.align_mid_step();
    let token = challenge(&app, &admin.email, &admin.password).await;
    assert_eq!(verify(&app, &token, &app.totp(&admin.secret, -2)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(verify(&app, &token, &app.totp(&admin.secret, 2)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(verify(&app, &token, &app.totp(&admin.secret, -1)).await, StatusCode::OK);
    let token = challenge(&app, &admin.email, &admin.password).await;
    assert_eq!(verify(&app, &token, &app.totp(&admin.secret, 1)).await, StatusCode::OK);
    // The current step is now older than the last accepted one (+1): refused.
    let token = challenge(&app, &admin.email, &admin.password).await;
    assert_eq!(verify(&app, &token, &app.totp(&admin.secret, 0)).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn recovery_codes_work_once_and_regeneration_invalidates_the_old_set() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let code = app.fresh_totp(&admin.secret);
    let (s, old) = app.post("/v1/me/mfa/recovery-codes", Some(&admin.access), json!({ "code": code })).await;
    assert_eq!(s, StatusCode::OK);
    let old: Vec<String> =
        old["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();

    let t = challenge(&app, &admin.email, &admin.password).await;
    assert_eq!(verify(&app, &t, &old[0].to_uppercase()).await, StatusCode::OK, "case-insensitive");
    assert!(app.has_event("mfa", "success", "recovery code").await);
    let t = challenge(&app, &admin.email, &admin.password).await;
    assert_eq!(verify(&app, &t, &old[0]).await, StatusCode::UNAUTHORIZED, "single use");

    let (s, _) = app.post("/v1/me/mfa/recovery-codes", Some(&admin.access), json!({ "code": "123456" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "regeneration needs a valid TOTP code");
    let code = app.fresh_totp(&admin.secret);
    let (s, new) = app.post("/v1/me/mfa/recovery-codes", Some(&admin.access), json!({ "code": code })).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(verify(&app, &t, &old[1]).await, StatusCode::UNAUTHORIZED, "old set is gone");
    assert_eq!(verify(&app, &t, new["recovery_codes"][0].as_str().unwrap()).await, StatusCode::OK);
}

#[tokio::test]
async fn mfa_token_expires_after_five_minutes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let t = challenge(&app, &admin.email, &admin.password).await;
    app.clock.advance(Duration::from_secs(301));
    let code = app.totp(&admin.secret, 0);
    assert_eq!(verify(&app, &t, &code).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn five_bad_mfa_codes_lock_the_account_even_across_password_steps() {
    // Security review finding 1: a correct password must not reset the counter when MFA is
    // enrolled, or "password, 4 wrong codes, password again" guesses codes forever.
    let app = spawn_app().await;
    let admin = app.admin().await;
    let wrong = app.totp(&admin.secret, 7);
    let t = challenge(&app, &admin.email, &admin.password).await;
    for _ in 0..3 {
        assert_eq!(verify(&app, &t, &wrong).await, StatusCode::UNAUTHORIZED);
    }
    // Three bad codes void the challenge: even the right code no longer works with it.
    let code = app.fresh_totp(&admin.secret);
    assert_eq!(verify(&app, &t, &code).await, StatusCode::UNAUTHORIZED, "challenge voided");
    // A new password step does not reset the count...
    let t = challenge(&app, &admin.email, &admin.password).await;
    let wrong = app.totp(&admin.secret, 7);
    for _ in 0..2 {
        assert_eq!(verify(&app, &t, &wrong).await, StatusCode::UNAUTHORIZED);
    }
    // ...so the fifth bad code locked the account.
    assert_eq!(app.login(&admin.email, &admin.password).await.0, StatusCode::UNAUTHORIZED, "locked");
    assert!(app.has_event("security", "success", "account locked").await);
    let n: i32 = sqlx::query_scalar("SELECT consecutive_failures FROM users WHERE id = $1::uuid")
        .bind(&admin.id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 5, "the lock does not reset the consecutive count");
}

#[tokio::test]
async fn the_same_code_sent_twice_at_once_wins_only_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let a = challenge(&app, &admin.email, &admin.password).await;
    let b = challenge(&app, &admin.email, &admin.password).await;
    let code = app.fresh_totp(&admin.secret);
    let (x, y) = tokio::join!(verify(&app, &a, &code), verify(&app, &b, &code));
    let wins = [x, y].iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(wins, 1, "{x} {y}");
}
