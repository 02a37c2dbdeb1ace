//! The "done when" scenario end to end: bootstrap an org, first login with the
//! one-time password, forced password change, MFA enrolment from the otpauth URI, login
//! with a TOTP code, creation of a clinician and an auditor — and every step in the audit.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::spawn_app;
use crate::helpers::NEW_PASSWORD;

/// (action, outcome, reason, actor, resource ids)
type Event = (String, String, Option<String>, Option<uuid::Uuid>, Vec<String>);

#[tokio::test]
async fn bootstrap_to_mfa_admin_creating_staff_is_fully_audited() {
    let app = spawn_app().await;
    let (org, email, otp) = app.bootstrap("St. Elsewhere", "chief@elsewhere.example").await;

    // First login: restricted to changing the password.
    let (s, first) = app.login(&email, &otp).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (first["password_change_required"].as_bool(), first["mfa_enrollment_required"].as_bool()),
        (Some(true), Some(true))
    );
    let t = first["access_token"].as_str().unwrap();
    let (s, _) = app
        .post("/v1/admin/users", Some(t), json!({ "email": "a@b.example", "role": "auditor", "display_name": "A" }))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) =
        app.post("/v1/me/password", Some(t), json!({ "current_password": otp, "new_password": NEW_PASSWORD })).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Enrol with an authenticator app: all it gets is the otpauth URI.
    let (s, enrol) = app.post("/v1/me/mfa/enroll", Some(t), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let uri = enrol["otpauth_uri"].as_str().unwrap();
    let secret_b32 = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap();
    let secret = custos::auth::totp::TotpSecret::from_base32(secret_b32).unwrap();
    let (s, codes) = app.post("/v1/me/mfa/confirm", Some(t), json!({ "code": app.totp(&secret, 0) })).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(codes["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(app.post("/v1/auth/logout", Some(t), json!({})).await.0, StatusCode::NO_CONTENT);

    // Log in again: password, then a TOTP code.
    let admin = app.login_mfa(&email, NEW_PASSWORD, &secret).await;
    let (_, me) = app.get("/v1/me", &admin.access).await;
    assert_eq!(
        (me["role"].as_str(), me["mfa_enabled"].as_bool(), me["org_id"].as_str()),
        (Some("admin"), Some(true), Some(org.as_str()))
    );
    let (clinician, _) = app.create_user(&admin, "doc@elsewhere.example", "clinician").await;
    let (auditor, _) = app.create_user(&admin, "audit@elsewhere.example", "auditor").await;

    // Every step is in the audit inbox, in order, attributed to the admin.
    let events: Vec<Event> = sqlx::query_as(
        "SELECT action::text, outcome::text, reason, actor_id, resource_ids FROM audit_inbox WHERE org_id = $1::uuid ORDER BY id",
    )
    .bind(&org)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let expected = [
        ("admin", "bootstrap: organization created"),
        ("admin", "bootstrap: first admin created"),
        ("login", "MFA enrolment required"),
        ("update", "password changed"),
        ("mfa", "TOTP enrolment started"),
        ("mfa", "TOTP confirmed"),
        ("logout", "logout"),
        ("login", "MFA challenge issued"),
        ("mfa", "TOTP"),
        ("login", "password and TOTP"),
        ("admin", "user created (clinician)"),
        ("admin", "user created (auditor)"),
    ];
    let mut it = events.iter();
    for (action, reason) in expected {
        let found = it
            .by_ref()
            .any(|(a, o, r, _, _)| a == action && o == "success" && r.as_deref().is_some_and(|r| r.contains(reason)));
        assert!(found, "missing or out of order: {action} / {reason}\n{events:#?}");
    }
    let admin_id: uuid::Uuid = admin.id.parse().unwrap();
    // The two bootstrap events (organization, first admin) are the system's.
    for (_, _, reason, actor, _) in &events[2..] {
        assert_eq!(*actor, Some(admin_id), "actor of {reason:?}");
    }
    assert!(events.iter().any(|e| e.4.contains(&clinician)));
    assert!(events.iter().any(|e| e.4.contains(&auditor)));
}
