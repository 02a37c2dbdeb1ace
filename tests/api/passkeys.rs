//! Passkeys through the API with a software authenticator (webauthn-authenticator-rs's
//! `SoftPasskey`, claiming user verification): registration after re-entering the password,
//! sign-in as the second factor, passwordless sign-in only where the organization allows it, a
//! cloned credential caught by its sign counter, a wrong origin or RP id refused, ceremonies
//! single use, and the "phishing-resistant factor" policy restricting TOTP-only staff.
//!
//! The relying party is `custos.localhost` at `https://custos.localhost`, so that a wrong RP id
//! the authenticator still accepts exists (`localhost`, a parent domain) and a wrong origin is
//! one it still signs for (`https://evil.custos.localhost`, a subdomain).

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};
use webauthn_rs_proto::AllowCredentials;

use super::helpers::Staff;
use crate::common::{TestApp, spawn_app_with};

const ORIGIN: &str = "https://custos.localhost";

async fn app() -> TestApp {
    spawn_app_with(&[
        ("CUSTOS_WEBAUTHN_RP_ID", "custos.localhost"),
        ("CUSTOS_WEBAUTHN_ORIGIN", ORIGIN),
        ("CUSTOS_AUTH_RATE_PER_MINUTE", "100000"),
    ])
    .await
}

fn origin(o: &str) -> Url {
    Url::parse(o).unwrap()
}

fn authenticator() -> SoftPasskey {
    SoftPasskey::new(true)
}

/// Starts a registration with the staff member's password; returns (ceremony token, options).
async fn register_start(app: &TestApp, staff: &Staff, token: &str) -> (String, CreationChallengeResponse) {
    let (s, body) = app
        .post("/v1/me/passkeys/register/start", Some(token), json!({ "password": staff.password, "label": "laptop" }))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    (body["ceremony_token"].as_str().unwrap().to_owned(), serde_json::from_value(body["options"].clone()).unwrap())
}

/// Registers a passkey on `key`; returns the passkey's JSON as the server answered it.
async fn register(app: &TestApp, staff: &Staff, token: &str, key: &mut SoftPasskey) -> Value {
    let (ceremony, options) = register_start(app, staff, token).await;
    let credential = key.do_registration(origin(ORIGIN), options).unwrap();
    let (s, body) = app
        .post(
            "/v1/me/passkeys/register/finish",
            Some(token),
            json!({ "ceremony_token": ceremony, "credential": credential }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body
}

/// The password step: an MFA token.
async fn mfa_token(app: &TestApp, staff: &Staff) -> String {
    let (s, body) = app.login(&staff.email, &staff.password).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn passkey_start(app: &TestApp, mfa: &str) -> (String, RequestChallengeResponse) {
    let (s, body) = app.post("/v1/auth/passkey/start", None, json!({ "mfa_token": mfa })).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    (body["ceremony_token"].as_str().unwrap().to_owned(), serde_json::from_value(body["options"].clone()).unwrap())
}

async fn passkey_finish(
    app: &TestApp,
    mfa: &str,
    ceremony: &str,
    credential: &impl serde::Serialize,
) -> (StatusCode, Value) {
    app.post(
        "/v1/auth/passkey/finish",
        None,
        json!({ "mfa_token": mfa, "ceremony_token": ceremony, "credential": credential }),
    )
    .await
}

/// Password + passkey → the session's access token.
async fn sign_in(app: &TestApp, staff: &Staff, key: &mut SoftPasskey) -> String {
    let mfa = mfa_token(app, staff).await;
    let (ceremony, options) = passkey_start(app, &mfa).await;
    let credential = key.do_authentication(origin(ORIGIN), options).unwrap();
    let (s, body) = passkey_finish(app, &mfa, &ceremony, &credential).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn set_policy(app: &TestApp, token: &str, require: bool, passwordless: bool) {
    let (s, body) = app
        .send(
            reqwest::Method::PUT,
            "/v1/admin/auth-policy",
            Some(token),
            Some(json!({ "require_phishing_resistant": require, "allow_passwordless": passwordless })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

async fn passkeys(app: &TestApp, token: &str) -> Vec<Value> {
    let (s, body) = app.get("/v1/me/passkeys", token).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["passkeys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_registered_passkey_is_a_second_factor_that_opens_a_session() {
    let app = app().await;
    let admin = app.admin().await;
    let mut key = authenticator();

    // Re-authentication: the wrong password starts nothing.
    let (s, body) = app
        .post("/v1/me/passkeys/register/start", Some(&admin.access), json!({ "password": "wrong", "label": "x" }))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(app.has_event("mfa", "denied", "passkey registration refused: wrong password").await);

    let registered = register(&app, &admin, &admin.access, &mut key).await;
    assert_eq!(registered["label"], "laptop");
    let listed = passkeys(&app, &admin.access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["sign_count"], 0);
    assert_eq!(listed[0]["backup_eligible"], false);
    assert!(listed[0].get("passkey").is_none(), "no key material in the listing: {listed:?}");

    let token = sign_in(&app, &admin, &mut key).await;
    let (s, me) = app.get("/v1/me", &token).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let listed = passkeys(&app, &token).await;
    assert_eq!(listed[0]["sign_count"], 1, "the counter is stored: {listed:?}");
    assert!(listed[0]["last_used_at"].is_string());
    assert!(app.has_event("mfa", "success", "passkey registration started").await);
    assert!(app.has_event("mfa", "success", "passkey registered").await);
    assert!(app.has_event("mfa", "success", "passkey sign-in started").await);
    assert!(app.has_event("login", "success", "password and passkey").await);

    // Deleting it leaves TOTP as the only factor; a passkey step then has nothing to offer.
    let id = listed[0]["id"].as_str().unwrap();
    let (s, _) = app.send(reqwest::Method::DELETE, &format!("/v1/me/passkeys/{id}"), Some(&token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let mfa = mfa_token(&app, &admin).await;
    let (s, _) = app.post("/v1/auth/passkey/start", None, json!({ "mfa_token": mfa })).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(app.has_event("delete", "success", "passkey deleted").await);
}

#[tokio::test]
async fn a_wrong_origin_or_rp_id_is_refused_and_a_ceremony_is_single_use() {
    let app = app().await;
    let admin = app.admin().await;
    let mut key = authenticator();

    // Registration: a phishing site's origin, then the right origin with another RP id.
    let (ceremony, options) = register_start(&app, &admin, &admin.access).await;
    let credential = key.do_registration(origin("https://evil.custos.localhost"), options).unwrap();
    let body = json!({ "ceremony_token": ceremony, "credential": credential });
    let (s, _) = app.post("/v1/me/passkeys/register/finish", Some(&admin.access), body.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app.has_event("mfa", "denied", "passkey registration refused: wrong origin").await);
    // The refused ceremony is gone: the same finish again finds nothing.
    let (s, _) = app.post("/v1/me/passkeys/register/finish", Some(&admin.access), body).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(app.has_event("mfa", "denied", "unknown, used or expired ceremony").await);

    let (ceremony, mut options) = register_start(&app, &admin, &admin.access).await;
    options.public_key.rp.id = "localhost".into();
    let credential = key.do_registration(origin(ORIGIN), options).unwrap();
    let (s, _) = app
        .post(
            "/v1/me/passkeys/register/finish",
            Some(&admin.access),
            json!({ "ceremony_token": ceremony, "credential": credential }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app.has_event("mfa", "denied", "passkey registration refused: wrong relying party id").await);
    assert!(passkeys(&app, &admin.access).await.is_empty());

    // A good registration, finished twice: the second finish is refused.
    let (ceremony, options) = register_start(&app, &admin, &admin.access).await;
    let credential = key.do_registration(origin(ORIGIN), options).unwrap();
    let body = json!({ "ceremony_token": ceremony, "credential": credential });
    let (s, _) = app.post("/v1/me/passkeys/register/finish", Some(&admin.access), body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.post("/v1/me/passkeys/register/finish", Some(&admin.access), body).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(passkeys(&app, &admin.access).await.len(), 1);

    // Sign-in: wrong origin, wrong RP id, then a good assertion replayed.
    let mfa = mfa_token(&app, &admin).await;
    let (ceremony, options) = passkey_start(&app, &mfa).await;
    let credential = key.do_authentication(origin("https://evil.custos.localhost"), options).unwrap();
    let (s, _) = passkey_finish(&app, &mfa, &ceremony, &credential).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("mfa", "denied", "passkey refused: wrong origin").await);

    let mfa = mfa_token(&app, &admin).await;
    let (ceremony, mut options) = passkey_start(&app, &mfa).await;
    options.public_key.rp_id = "localhost".into();
    let credential = key.do_authentication(origin(ORIGIN), options).unwrap();
    let (s, _) = passkey_finish(&app, &mfa, &ceremony, &credential).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("mfa", "denied", "passkey refused: wrong relying party id").await);

    let mfa = mfa_token(&app, &admin).await;
    let (ceremony, options) = passkey_start(&app, &mfa).await;
    let credential = key.do_authentication(origin(ORIGIN), options).unwrap();
    let (s, body) = passkey_finish(&app, &mfa, &ceremony, &credential).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Replaying the finish: the MFA token is used and the ceremony is gone.
    let (s, _) = passkey_finish(&app, &mfa, &ceremony, &credential).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Even with a fresh password step, the old ceremony cannot be finished.
    let mfa = mfa_token(&app, &admin).await;
    let (s, _) = passkey_finish(&app, &mfa, &ceremony, &credential).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("mfa", "denied", "passkey refused: unknown, used or expired ceremony").await);
}

#[tokio::test]
async fn a_cloned_credential_is_caught_by_its_sign_counter() {
    let app = app().await;
    let admin = app.admin().await;
    let mut key = authenticator();
    register(&app, &admin, &admin.access, &mut key).await;

    // Two sign-ins in flight. The authenticator answers A (counter 1), then B (counter 2);
    // B arrives first. A's answer is what a copy of the key that fell behind would send.
    let mfa_a = mfa_token(&app, &admin).await;
    let (ceremony_a, options_a) = passkey_start(&app, &mfa_a).await;
    let mfa_b = mfa_token(&app, &admin).await;
    let (ceremony_b, options_b) = passkey_start(&app, &mfa_b).await;
    let answer_a = key.do_authentication(origin(ORIGIN), options_a).unwrap();
    let answer_b = key.do_authentication(origin(ORIGIN), options_b).unwrap();
    let (s, body) = passkey_finish(&app, &mfa_b, &ceremony_b, &answer_b).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (s, _) = passkey_finish(&app, &mfa_a, &ceremony_a, &answer_a).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(app.has_event("mfa", "denied", "sign counter did not move forward").await);

    // The passkey is disabled from then on: neither copy signs in with it again.
    let listed = passkeys(&app, &token).await;
    assert!(listed[0]["clone_detected_at"].is_string(), "{listed:?}");
    assert_eq!(listed[0]["sign_count"], 2);
    let mfa = mfa_token(&app, &admin).await;
    let (s, _) = app.post("/v1/auth/passkey/start", None, json!({ "mfa_token": mfa })).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

/// A passwordless answer: the software authenticator finds credentials only from the allow
/// list, and returns no user handle — a platform authenticator does both itself. The test
/// does it for it: the credential id goes into the allow list, the handle (the account id, as
/// registered) into the answer (it is not signed, as in WebAuthn).
async fn passwordless_answer(app: &TestApp, key: &mut SoftPasskey, cred_id: &[u8], user: Uuid) -> (String, Value) {
    let (s, body) = app.post("/v1/auth/passkey/passwordless/start", None, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let mut options: RequestChallengeResponse = serde_json::from_value(body["options"].clone()).unwrap();
    assert!(options.public_key.allow_credentials.is_empty(), "discoverable: no allow list");
    options.public_key.allow_credentials =
        vec![AllowCredentials { type_: "public-key".into(), id: cred_id.to_vec(), transports: None }];
    let mut credential = key.do_authentication(origin(ORIGIN), options).unwrap();
    credential.response.user_handle = Some(user.as_bytes().to_vec());
    (body["ceremony_token"].as_str().unwrap().to_owned(), serde_json::to_value(&credential).unwrap())
}

#[tokio::test]
async fn passwordless_sign_in_only_where_the_organization_allows_it() {
    let app = app().await;
    let admin = app.admin().await;
    let mut key = authenticator();
    register(&app, &admin, &admin.access, &mut key).await;
    let cred_id: Vec<u8> =
        sqlx::query_scalar("SELECT credential_id FROM passkey_credentials").fetch_one(&app.db.pool).await.unwrap();
    let user: Uuid = admin.id.parse().unwrap();

    let (ceremony, credential) = passwordless_answer(&app, &mut key, &cred_id, user).await;
    let finish = json!({ "ceremony_token": ceremony, "credential": credential });
    let (s, body) = app.post("/v1/auth/passkey/passwordless/finish", None, finish.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "passwordless_not_allowed");
    assert!(app.has_event("login_failed", "denied", "not allowed by the organization's policy").await);

    set_policy(&app, &admin.access, false, true).await;
    assert!(app.has_event("admin", "success", "allow_passwordless false → true").await);
    // The refused ceremony was used up.
    let (s, _) = app.post("/v1/auth/passkey/passwordless/finish", None, finish).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (ceremony, credential) = passwordless_answer(&app, &mut key, &cred_id, user).await;
    let finish = json!({ "ceremony_token": ceremony, "credential": credential });
    let (s, body) = app.post("/v1/auth/passkey/passwordless/finish", None, finish.clone()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, me) = app.get("/v1/me", body["access_token"].as_str().unwrap()).await;
    assert_eq!((s, me["id"].as_str()), (StatusCode::OK, Some(admin.id.as_str())));
    assert!(app.has_event("login", "success", "passwordless passkey").await);
    // Single use.
    let (s, _) = app.post("/v1/auth/passkey/passwordless/finish", None, finish).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A handle that is not the credential's owner is refused.
    let (ceremony, credential) = passwordless_answer(&app, &mut key, &cred_id, Uuid::new_v4()).await;
    let (s, _) = app
        .post(
            "/v1/auth/passkey/passwordless/finish",
            None,
            json!({ "ceremony_token": ceremony, "credential": credential }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn under_the_policy_totp_only_staff_can_only_enrol_a_passkey() {
    let app = app().await;
    let admin = app.admin().await;
    set_policy(&app, &admin.access, true, false).await;
    assert!(app.has_event("admin", "success", "require_phishing_resistant false → true").await);

    // The TOTP session is restricted at once, and so is a new TOTP sign-in.
    let totp = app.login_mfa(&admin.email, &admin.password, &admin.secret).await;
    for token in [&admin.access, &totp.access] {
        for path in ["/v1/patients", "/v1/me/passkeys", "/v1/admin/users", "/v1/me/sessions", "/v1/admin/auth-policy"] {
            let (s, body) = app.get(path, token).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {body}");
            assert_eq!(body["error"]["code"], "passkey_enrollment_required", "{path}");
        }
        let (s, _) = app.get("/v1/me", token).await;
        assert_eq!(s, StatusCode::OK);
    }
    // Refusals are recorded by the audit wrapper.
    assert!(app.has_event("security", "denied", "passkey_enrollment_required").await);

    // Enrolling a passkey is what it may do; the session stays restricted (a phished TOTP
    // session must not become a full one by adding the attacker's key): sign in with it.
    let mut key = authenticator();
    register(&app, &admin, &totp.access, &mut key).await;
    let (s, _) = app.get("/v1/patients", &totp.access).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.post("/v1/auth/logout", Some(&totp.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let token = sign_in(&app, &admin, &mut key).await;
    for path in ["/v1/me/passkeys", "/v1/admin/users", "/v1/admin/auth-policy"] {
        let (s, body) = app.get(path, &token).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
    }
    // The clinical API's gate applies the same rule.
    let (s, _) = app.get("/v1/patients", &token).await;
    assert_eq!(s, StatusCode::OK);

    // Policy off: TOTP sessions are full again.
    set_policy(&app, &token, false, false).await;
    let (s, _) = app.get("/v1/me/passkeys", &admin.access).await;
    assert_eq!(s, StatusCode::OK);
}

/// An admin resets a user's passkeys (a lost or stolen authenticator), like reset-mfa: every
/// passkey deleted, every session ended, recorded; never on oneself, never across
/// organizations. The user signs in with TOTP and may enrol a new passkey.
#[tokio::test]
async fn an_admin_resets_a_users_passkeys() {
    let app = app().await;
    let admin = app.admin().await;
    let (id, otp) = app.create_user(&admin, "doc@general.example", "clinician").await;
    let doc = app.onboard("doc@general.example", &otp).await;
    let mut lost = authenticator();
    register(&app, &doc, &doc.access, &mut lost).await;
    register(&app, &doc, &doc.access, &mut authenticator()).await;
    assert_eq!(passkeys(&app, &doc.access).await.len(), 2);

    let (s, b) = app.post(&format!("/v1/admin/users/{id}/reset-passkeys"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(app.get("/v1/me", &doc.access).await.0, StatusCode::UNAUTHORIZED, "sessions ended");
    assert!(app.has_event("mfa", "success", "passkeys reset: 2 passkey(s) deleted").await);
    // The lost authenticator opens nothing: the passkey step has no passkey to offer.
    let mfa = mfa_token(&app, &doc).await;
    let (s, _) = app.post("/v1/auth/passkey/start", None, json!({ "mfa_token": mfa })).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // TOTP still signs in, and a new passkey can be enrolled.
    let doc = app.login_mfa(&doc.email, &doc.password, &doc.secret).await;
    assert!(passkeys(&app, &doc.access).await.is_empty());
    register(&app, &doc, &doc.access, &mut authenticator()).await;

    // Not on oneself; not on another organization's user (404, recorded).
    let (s, b) =
        app.post(&format!("/v1/admin/users/{}/reset-passkeys", admin.id), Some(&admin.access), json!({})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("self_action")));
    let (_, e2, o2) = app.bootstrap("Elsewhere", "admin@elsewhere.example").await;
    let other = app.onboard(&e2, &o2).await;
    let (s, _) = app.post(&format!("/v1/admin/users/{id}/reset-passkeys"), Some(&other.access), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(app.has_event("admin", "denied", "admin action on an unknown user").await);
    assert_eq!(passkeys(&app, &doc.access).await.len(), 1, "the other admin deleted nothing");
    // A clinician cannot reset anyone's passkeys.
    let (s, _) = app.post(&format!("/v1/admin/users/{}/reset-passkeys", admin.id), Some(&doc.access), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
