//! Admin user management: create (validation, duplicates, one-time password), paginated
//! list, disable/enable, reset MFA, and the organization boundary.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::spawn_app;

#[tokio::test]
async fn create_validates_input_and_refuses_duplicates_and_non_admins() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let t = Some(admin.access.as_str());
    for (body, field) in [
        (json!({ "email": "x@general.example", "role": "superuser", "display_name": "X" }), "role"),
        (json!({ "email": "x@general.example", "role": "patient", "display_name": "X" }), "role"),
        (json!({ "email": "not an email", "role": "clinician", "display_name": "X" }), "email"),
        (json!({ "email": "x@general.example", "role": "clinician", "display_name": "  " }), "display_name"),
    ] {
        let (s, b) = app.post("/v1/admin/users", t, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["error"]["field"], field);
    }
    let (s, b) = app.post("/v1/admin/users", t, json!({ "email": "x@general.example" })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (_, otp) = app.create_user(&admin, "doc@general.example", "clinician").await;
    assert_eq!(otp.len(), 20);
    let (s, _) = app
        .post("/v1/admin/users", t, json!({ "email": "DOC@general.example", "role": "auditor", "display_name": "Y" }))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "emails are unique case-insensitively");
    // The email is sealed at rest.
    let raw: Vec<Vec<u8>> = sqlx::query_scalar("SELECT email_enc FROM users").fetch_all(&app.db.pool).await.unwrap();
    assert!(raw.iter().all(|e| !String::from_utf8_lossy(e).contains("doc@general")));

    let doc = app.onboard("doc@general.example", &otp).await;
    let (s, b) = app
        .post(
            "/v1/admin/users",
            Some(&doc.access),
            json!({ "email": "z@general.example", "role": "admin", "display_name": "Z" }),
        )
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
}

#[tokio::test]
async fn list_is_paginated_and_confined_to_the_admins_org() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for i in 0..3 {
        app.create_user(&admin, &format!("u{i}@general.example"), "auditor").await;
    }
    let (_, email_b, otp_b) = app.bootstrap("Other Org", "admin@other.example").await;
    let admin_b = app.onboard(&email_b, &otp_b).await;

    let (s, page1) = app.get("/v1/admin/users?limit=3", &admin.access).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page1["users"].as_array().unwrap().len(), 3);
    let after = page1["next_after"].as_str().unwrap();
    let (_, page2) = app.get(&format!("/v1/admin/users?limit=3&after={after}"), &admin.access).await;
    let page2 = page2["users"].as_array().unwrap();
    assert_eq!(page2.len(), 1);
    let mut emails: Vec<String> = page1["users"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2)
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    assert_eq!(emails, ["admin@general.example", "u0@general.example", "u1@general.example", "u2@general.example"]);
    assert!(page2[0]["display_name"] == "Dr. Test");

    let (_, b) = app.get("/v1/admin/users", &admin_b.access).await;
    assert_eq!(b["users"].as_array().unwrap().len(), 1, "org B sees only itself");
    assert_eq!(app.get("/v1/admin/users?limit=0", &admin.access).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/v1/admin/users?after=nope", &admin.access).await.0, StatusCode::BAD_REQUEST);

    // Org B's admin cannot act on org A's users.
    let victim = page1["users"][1]["id"].as_str().unwrap();
    let (s, _) = app.post(&format!("/v1/admin/users/{victim}/disable"), Some(&admin_b.access), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let status: String = sqlx::query_scalar("SELECT status::text FROM users WHERE id = $1::uuid")
        .bind(victim)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "active");
}

#[tokio::test]
async fn disable_revokes_sessions_and_enable_restores_login() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (id, otp) = app.create_user(&admin, "c@general.example", "clinician").await;
    let (_, c) = app.login("c@general.example", &otp).await;
    let token = c["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me", token).await.0, StatusCode::OK);
    let (s, _) = app.post(&format!("/v1/admin/users/{id}/disable"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/me", token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("c@general.example", &otp).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post(&format!("/v1/admin/users/{id}/enable"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.login("c@general.example", &otp).await.0, StatusCode::OK);
    assert!(app.has_event("admin", "success", "user disabled; 1 session(s) revoked").await);
    assert!(app.has_event("admin", "success", "user enabled").await);
    let (s, b) = app.post(&format!("/v1/admin/users/{}/disable", admin.id), Some(&admin.access), json!({})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("self_action")));
    let (s, _) = app.post(&format!("/v1/admin/users/{id}/promote"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reset_mfa_revokes_sessions_and_requires_enrolment_again() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (id, otp) = app.create_user(&admin, "c@general.example", "clinician").await;
    let doc = app.onboard("c@general.example", &otp).await;
    let (s, _) = app.post(&format!("/v1/admin/users/{id}/reset-mfa"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/me", &doc.access).await.0, StatusCode::UNAUTHORIZED);
    let (s, b) = app.login(&doc.email, &doc.password).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.get("mfa_required").is_none(), "{b}");
    assert_eq!(b["mfa_enrollment_required"], true);
    assert!(app.has_event("mfa", "success", "MFA reset").await);
}

/// Issue 19, the cross-organization email oracle: an admin of org B creating a user whose
/// email has an account in org A gets what an unknown email gets — status, body shape and the
/// same work (both are real creations) — and both creations are recorded.
#[tokio::test]
async fn an_email_used_in_another_organization_answers_like_an_unknown_one() {
    let app = spawn_app().await;
    let admin_a = app.admin().await;
    let (_, otp_a) = app.create_user(&admin_a, "shared@mail.example", "clinician").await;
    let (_, email_b, otp_b) = app.bootstrap("Other Org", "admin@other.example").await;
    let admin_b = app.onboard(&email_b, &otp_b).await;
    let create = |email: &'static str| {
        let app = &app;
        let token = admin_b.access.clone();
        async move {
            let started = std::time::Instant::now();
            let (s, b) = app
                .post(
                    "/v1/admin/users",
                    Some(&token),
                    json!({ "email": email, "role": "clinician", "display_name": "Dr. Q" }),
                )
                .await;
            (s, b, started.elapsed())
        }
    };
    let (s_known, known, t_known) = create("shared@mail.example").await;
    let (s_new, new, t_new) = create("nobody@mail.example").await;
    assert_eq!((s_known, s_new), (StatusCode::CREATED, StatusCode::CREATED), "{known} {new}");
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&known), keys(&new));
    assert_eq!(known["email"], "shared@mail.example");
    // Same timing class: both hash a one-time password and insert a row (a 409 took no hash).
    let (lo, hi) = (t_known.min(t_new), t_known.max(t_new));
    assert!(hi < lo * 4 + std::time::Duration::from_millis(200), "{t_known:?} vs {t_new:?}");
    let created = app
        .audit()
        .await
        .iter()
        .filter(|(a, o, r)| a == "admin" && o == "success" && r.as_deref() == Some("user created (clinician)"))
        .count();
    assert_eq!(created, 3, "org A's user and both of org B's are recorded");

    // Two accounts, one email: sign-in names the organization; without it, the same 401 as an
    // unknown email, recorded.
    let (s, _) = app.login("shared@mail.example", &otp_a).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("login_failed", "denied", "several organizations").await, "{:?}", app.audit().await);
    let (s, b) = app
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "shared@mail.example", "password": otp_a, "organization": "General Hospital" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["password_change_required"], true);
    let (s, _) = app
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "shared@mail.example", "password": otp_a, "organization": "Other Org" }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "org A's password is not org B's account's");
    // Within one organization an email is still unique (the admin sees their own users anyway).
    let (s, _, _) = create("shared@mail.example").await;
    assert_eq!(s.as_u16(), 409);
}
