//! Sessions: refresh rotation and reuse detection, idle and absolute expiry (server clock
//! moved forward, no sleeps), logout and revocation killing access tokens at once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{spawn_app, spawn_app_with};

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (s, one) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": admin.refresh })).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_ne!(one["refresh_token"], admin.refresh.as_str());
    assert_eq!(one["session_id"], admin.session_id.as_str());
    assert_eq!(one["mfa_enrollment_required"], false);
    let (s, two) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": one["refresh_token"] })).await;
    assert_eq!(s, StatusCode::OK);
    let latest_access = two["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me", latest_access).await.0, StatusCode::OK);

    // The first token again: reuse. The session and every token of it die.
    let (s, _) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": admin.refresh })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/me", latest_access).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": two["refresh_token"] })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("security", "denied", "refresh token reuse").await);
    assert!(app.audit().await.iter().any(|(a, o, _)| a == "refresh" && o == "success"));
}

#[tokio::test]
async fn idle_sessions_die_even_with_an_unexpired_access_token() {
    let app =
        spawn_app_with(&[("CUSTOS_SESSION_IDLE_TIMEOUT_SECS", "300"), ("CUSTOS_ACCESS_TOKEN_TTL_SECS", "600")]).await;
    let admin = app.admin().await;
    // Activity keeps it alive: 4 + 4 minutes with requests in between.
    app.clock.advance(Duration::from_secs(240));
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::OK);
    app.clock.advance(Duration::from_secs(240));
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::OK);

    let s2 = app.login_mfa(&admin.email, &admin.password, &admin.secret).await;
    app.clock.advance(Duration::from_secs(330)); // idle 5.5 min; the JWT (10 min) is still valid
    assert_eq!(app.get("/v1/me", &s2.access).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": s2.refresh })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("refresh", "denied", "idle timeout").await);
}

/// A busy session is not written on every request: `last_seen_at` moves only when it is more
/// than a few seconds old, and the activity still counts against the idle timeout.
#[tokio::test]
async fn activity_is_written_at_most_every_few_seconds() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let seen = || async {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>("SELECT last_seen_at FROM sessions WHERE id = $1::uuid")
            .bind(&admin.session_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
    };
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::OK);
    let first = seen().await;
    assert!((app.clock.now() - first).num_seconds().abs() <= 1, "a stale last_seen_at is bumped to now");

    app.clock.advance(Duration::from_secs(2));
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::OK);
    assert_eq!(seen().await, first, "a fresh one is left alone");

    app.clock.advance(Duration::from_secs(4));
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::OK);
    assert!(seen().await > first, "six seconds later it moves again");
}

#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime_despite_activity() {
    let app = spawn_app_with(&[("CUSTOS_SESSION_ABSOLUTE_TIMEOUT_SECS", "1800")]).await;
    let admin = app.admin().await;
    let mut refresh = admin.refresh.clone();
    let mut access = admin.access.clone();
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(8 * 60));
        let (s, t) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": refresh })).await;
        assert_eq!(s, StatusCode::OK);
        refresh = t["refresh_token"].as_str().unwrap().to_owned();
        access = t["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.get("/v1/me", &access).await.0, StatusCode::OK);
    }
    app.clock.advance(Duration::from_secs(8 * 60)); // 32 min > 30 min; last JWT is 8 min old
    assert_eq!(app.get("/v1/me", &access).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": refresh })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("refresh", "denied", "absolute lifetime").await);
}

#[tokio::test]
async fn logout_kills_outstanding_access_and_refresh_tokens() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::OK);
    let (s, _) = app.post("/v1/auth/logout", Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": admin.refresh })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("logout", "success", "logout").await);
}

#[tokio::test]
async fn users_list_and_revoke_their_own_sessions_only() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let other = app.login_mfa(&admin.email, &admin.password, &admin.secret).await;
    let (s, body) = app.get("/v1/me/sessions", &admin.access).await;
    assert_eq!(s, StatusCode::OK);
    let list = body["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{body}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list.iter().all(|s| s["client_ip"] == "127.0.0.1"));

    let (s, _) = app
        .send(reqwest::Method::DELETE, &format!("/v1/me/sessions/{}", other.session_id), Some(&admin.access), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/me", &other.access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::OK);
    let (s, _) = app
        .send(reqwest::Method::DELETE, &format!("/v1/me/sessions/{}", uuid::Uuid::new_v4()), Some(&admin.access), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Another user's session cannot be revoked through /v1/me/sessions, even by an admin.
    let (_, otp) = app.create_user(&admin, "c@general.example", "clinician").await;
    let (_, c) = app.login("c@general.example", &otp).await;
    let sid = c["session_id"].as_str().unwrap();
    let (s, _) = app.send(reqwest::Method::DELETE, &format!("/v1/me/sessions/{sid}"), Some(&admin.access), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/me", c["access_token"].as_str().unwrap()).await.0, StatusCode::OK);
    let (s, _) = app.send(reqwest::Method::DELETE, "/v1/me/sessions/not-a-uuid", Some(&admin.access), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn password_change_revokes_every_other_session() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let other = app.login_mfa(&admin.email, &admin.password, &admin.secret).await;
    let (s, _) = app
        .post(
            "/v1/me/password",
            Some(&admin.access),
            json!({ "current_password": admin.password, "new_password": "a different but equally long passphrase" }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/me", &other.access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::OK);
    assert_eq!(app.login(&admin.email, &admin.password).await.0, StatusCode::UNAUTHORIZED, "old password gone");
    assert!(app.has_event("update", "success", "password changed; 1 other session").await);
}

/// The session check sends the caller's claims and the check as one implicit transaction:
/// after live, dead and concurrent checks, every pooled connection is back to the login
/// role with no claims set and no transaction open.
#[tokio::test]
async fn the_session_check_leaves_nothing_on_pooled_connections() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let checks = (0..12).map(|_| app.get("/v1/me", &admin.access));
    assert!(futures_util::future::join_all(checks).await.iter().all(|(s, _)| *s == StatusCode::OK));
    let (s, _) = app.post("/v1/auth/logout", Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/me", &admin.access).await.0, StatusCode::UNAUTHORIZED);

    let login_role: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(&app.db.pool).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..app.pool.size() {
        let mut conn = app.pool.acquire().await.unwrap();
        let (role, user, org, claimed_role): (String, Option<String>, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT current_user::text, nullif(current_setting('custos.user_id', true), ''), \
                 nullif(current_setting('custos.org_id', true), ''), nullif(current_setting('custos.role', true), '')",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!((role.as_str(), user, org, claimed_role), (login_role.as_str(), None, None, None));
        // SAVEPOINT works only inside a transaction block: it fails unless one was left open.
        assert!(sqlx::raw_sql("SAVEPOINT leak_probe").execute(&mut *conn).await.is_err(), "transaction left open");
        held.push(conn);
    }
    assert!(!held.is_empty());
}

#[tokio::test]
async fn a_refresh_token_cannot_outlive_its_sessions_absolute_lifetime() {
    // A session row whose end was pushed out a year (a bug, a restore, a tampered row) still
    // ends at its start plus the configured absolute lifetime.
    let app = spawn_app_with(&[("CUSTOS_SESSION_ABSOLUTE_TIMEOUT_SECS", "1800")]).await;
    let admin = app.admin().await;
    sqlx::query("UPDATE sessions SET expires_at = expires_at + interval '365 days'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE refresh_tokens SET expires_at = expires_at + interval '365 days'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let mut refresh = admin.refresh.clone();
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(8 * 60));
        let (s, t) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": refresh })).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        refresh = t["refresh_token"].as_str().unwrap().to_owned();
        let access = t["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.get("/v1/me", &access).await.0, StatusCode::OK); // not idle
    }
    app.clock.advance(Duration::from_secs(8 * 60)); // 32 min > 30 min
    let (s, _) = app.post("/v1/auth/refresh", None, json!({ "refresh_token": refresh })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("refresh", "denied", "absolute lifetime").await);
}
