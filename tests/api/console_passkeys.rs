//! Passkeys through the console's routes (`src/console/passkeys.rs`), as a browser would use
//! them — a session cookie, the CSRF token from the page, JSON posts for the ceremonies — with
//! the software authenticator of `tests/api/passkeys.rs`. The real browser runs the same flows
//! in `tests/browser/tests/30-passkeys.test.js`; these pin the server side: the organization
//! field of the sign-in form, registration and removal, the passkey as second factor and
//! passwordless, CSRF on the JSON routes, and the policy's restricted session.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
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
const ORG: &str = "General Hospital";

async fn app() -> TestApp {
    spawn_app_with(&[
        ("CUSTOS_WEBAUTHN_RP_ID", "custos.localhost"),
        ("CUSTOS_WEBAUTHN_ORIGIN", ORIGIN),
        ("CUSTOS_AUTH_RATE_PER_MINUTE", "100000"),
    ])
    .await
}

/// What a browser keeps for the console: its cookies and the last page's CSRF token.
struct Browser<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
    csrf: String,
}

/// An answer: status, `Location`, body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookies: BTreeMap::new(), csrf: String::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.header(COOKIE, self.cookie_header()).send().await.expect("request");
        for c in resp.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = resp.status();
        let location = resp.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_owned());
        let body = resp.text().await.unwrap_or_default();
        if let Some((_, rest)) = body.split_once("data-csrf=\"") {
            self.csrf = rest.split('"').next().unwrap().to_owned();
        }
        Answer { status, location, body }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let req = self.app.client.get(self.app.url(path));
        self.send(req).await
    }

    /// A form post with the page's CSRF token.
    async fn form(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = fields.to_vec();
        let csrf = self.csrf.clone();
        all.push(("csrf", &csrf));
        let req = self
            .app
            .client
            .post(self.app.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&all).unwrap());
        self.send(req).await
    }

    /// A `fetch` as `passkey.js` makes it: JSON, `Accept: application/json`, the CSRF header.
    async fn fetch(&mut self, path: &str, body: Value, csrf: bool) -> Answer {
        let mut req = self.app.client.post(self.app.url(path)).header(ACCEPT, "application/json").json(&body);
        if csrf {
            req = req.header("X-CSRF-Token", self.csrf.clone());
        }
        self.send(req).await
    }

    /// The password step (with the organization field); answers where it leads.
    async fn password_step(&mut self, staff: &Staff, organization: &str) -> Answer {
        self.get("/console/sign-in").await;
        self.form(
            "/console/sign-in",
            &[("email", &staff.email), ("password", &staff.password), ("organization", organization)],
        )
        .await
    }

    async fn sign_in_totp(&mut self, staff: &Staff) {
        let a = self.password_step(staff, "").await;
        assert_eq!(a.location.as_deref(), Some("/console/sign-in/code"), "{}", a.status);
        self.get("/console/sign-in/code").await;
        let code = self.app.fresh_totp(&staff.secret);
        let a = self.form("/console/sign-in/code", &[("code", &code)]).await;
        assert_eq!(a.location.as_deref(), Some("/console/"), "{}", a.status);
    }

    /// Registers a passkey on the console's passkeys page.
    async fn register(&mut self, staff: &Staff, key: &mut SoftPasskey, label: &str) {
        self.get("/console/passkeys").await;
        let a = self
            .fetch("/console/passkeys/register/start", json!({ "password": staff.password, "label": label }), true)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let started = a.json();
        let options: CreationChallengeResponse = serde_json::from_value(started["options"].clone()).unwrap();
        let credential = key.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
        let body = json!({ "ceremony_token": started["ceremony_token"], "credential": credential });
        let a = self.fetch("/console/passkeys/register/finish", body, true).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        assert_eq!(a.json()["location"], "/console/passkeys?done=registered");
    }

    /// Password + passkey; the session cookie is set.
    async fn sign_in_passkey(&mut self, staff: &Staff, key: &mut SoftPasskey) {
        let a = self.password_step(staff, "").await;
        assert_eq!(a.location.as_deref(), Some("/console/sign-in/code"));
        self.get("/console/sign-in/code").await;
        let a = self.fetch("/console/sign-in/passkey/start", json!({}), true).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let started = a.json();
        let options: RequestChallengeResponse = serde_json::from_value(started["options"].clone()).unwrap();
        let credential = key.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap();
        let body = json!({ "ceremony_token": started["ceremony_token"], "credential": credential });
        let a = self.fetch("/console/sign-in/passkey/finish", body, true).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.json()["location"], "/console/");
        assert!(self.cookies.contains_key("custos_console"), "the session cookie is set");
        assert!(!self.cookies.contains_key("custos_console_mfa"), "the challenge cookie is gone");
    }

    async fn sign_out(&mut self) {
        let a = self.form("/console/sign-out", &[]).await;
        assert_eq!(a.location.as_deref(), Some("/console/sign-in"));
    }
}

async fn set_policy(app: &TestApp, token: &str, require: bool, passwordless: bool) {
    let body = json!({ "require_phishing_resistant": require, "allow_passwordless": passwordless });
    let (s, body) = app.send(reqwest::Method::PUT, "/v1/admin/auth-policy", Some(token), Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn console_passkeys_register_sign_in_passwordless_and_remove() {
    let app = app().await;
    let admin = app.admin().await;
    let mut key = SoftPasskey::new(true);
    let mut b = Browser::new(&app);

    // The sign-in form: the organization field, and a passkey sign-in.
    let page = b.get("/console/sign-in").await;
    assert!(page.body.contains(r#"<label for="organization">Organization</label>"#), "{}", page.body);
    assert!(page.body.contains("Sign in with a passkey"));
    assert!(page.body.contains("/passkey.js"));
    // Naming another organization is the same refusal as a wrong password; naming its own works.
    let a = b.password_step(&admin, "No Such Clinic").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = b.password_step(&admin, ORG).await;
    assert_eq!(a.location.as_deref(), Some("/console/sign-in/code"));
    b.get("/console/sign-in/code").await;
    let code = app.fresh_totp(&admin.secret);
    let a = b.form("/console/sign-in/code", &[("code", &code)]).await;
    assert_eq!(a.location.as_deref(), Some("/console/"));

    let page = b.get("/console/passkeys").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You have no passkeys yet."));
    assert!(app.has_event("read", "success", "own passkeys listed").await);
    // A ceremony route without the CSRF header is refused before anything starts.
    let body = json!({ "password": admin.password, "label": "x" });
    let a = b.fetch("/console/passkeys/register/start", body, false).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(!app.has_event("mfa", "success", "passkey registration started").await);
    // The password again, as the API requires.
    let body = json!({ "password": "not the password", "label": "x" });
    let a = b.fetch("/console/passkeys/register/start", body, true).await;
    assert_eq!(
        (a.status, a.json()["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_current_password"))
    );

    b.register(&admin, &mut key, "console key").await;
    let page = b.get("/console/passkeys?done=registered").await;
    assert!(page.body.contains("Passkey registered."));
    assert!(page.body.contains("console key"));
    assert!(page.body.contains("never"));
    assert!(page.body.contains("This device only"), "SoftPasskey is not backup eligible");
    assert!(app.has_event("mfa", "success", "passkey registered").await);

    // Password + passkey.
    b.sign_out().await;
    b.sign_in_passkey(&admin, &mut key).await;
    assert_eq!(b.get("/console/users").await.status, StatusCode::OK);
    assert!(app.has_event("login", "success", "password and passkey").await);
    assert!(!b.get("/console/passkeys").await.body.contains("never"), "the last use is shown");

    // Passwordless: refused until the organization allows it. (SoftPasskey finds credentials
    // only from an allow list and sends no user handle; the test adds both, as the API test does.)
    let cred_id: Vec<u8> =
        sqlx::query_scalar("SELECT credential_id FROM passkey_credentials").fetch_one(&app.db.pool).await.unwrap();
    let user: Uuid = admin.id.parse().unwrap();
    b.sign_out().await;
    let mut passwordless = async |b: &mut Browser<'_>| {
        b.get("/console/sign-in").await;
        let a = b.fetch("/console/sign-in/passwordless/start", json!({}), true).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let started = a.json();
        let mut options: RequestChallengeResponse = serde_json::from_value(started["options"].clone()).unwrap();
        options.public_key.allow_credentials =
            vec![AllowCredentials { type_: "public-key".into(), id: cred_id.clone(), transports: None }];
        let mut credential = key.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap();
        credential.response.user_handle = Some(user.as_bytes().to_vec());
        let body = json!({ "ceremony_token": started["ceremony_token"], "credential": credential });
        b.fetch("/console/sign-in/passwordless/finish", body, true).await
    };
    let a = passwordless(&mut b).await;
    assert_eq!(
        (a.status, a.json()["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("passwordless_not_allowed"))
    );
    assert!(!b.cookies.contains_key("custos_console"));
    set_policy(&app, &admin.access, false, true).await;
    let a = passwordless(&mut b).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(b.get("/console/").await.status, StatusCode::OK);
    assert!(app.has_event("login", "success", "passwordless passkey").await);

    // Remove it.
    let id: Uuid = sqlx::query_scalar("SELECT id FROM passkey_credentials").fetch_one(&app.db.pool).await.unwrap();
    b.get("/console/passkeys").await;
    let a = b.form(&format!("/console/passkeys/{id}/remove"), &[]).await;
    assert_eq!(a.location.as_deref(), Some("/console/passkeys?done=removed"));
    assert!(b.get("/console/passkeys").await.body.contains("You have no passkeys yet."));
    assert!(app.has_event("delete", "success", "passkey deleted").await);
}

#[tokio::test]
async fn under_the_policy_a_totp_console_session_only_gets_the_enrolment_page() {
    let app = app().await;
    let admin = app.admin().await;
    set_policy(&app, &admin.access, true, false).await;
    let mut b = Browser::new(&app);
    b.sign_in_totp(&admin).await;

    for page in ["/console/", "/console/users", "/console/sessions", "/console/events"] {
        let a = b.get(page).await;
        assert_eq!(a.location.as_deref(), Some("/console/passkeys"), "{page}: {}", a.status);
    }
    let page = b.get("/console/passkeys").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your organization requires a phishing-resistant factor"));
    assert!(!page.body.contains(r#"aria-label="Main""#), "no navigation");
    // Forms of the full console are refused, and recorded.
    let a = b.form(&format!("/console/sessions/{}/revoke", Uuid::new_v4()), &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        app.has_event("security", "denied", "passkey_enrollment_required (POST /console/sessions/{id}/revoke").await
    );

    // Enrolling is what it may do; the session stays restricted; a passkey sign-in is full.
    let mut key = SoftPasskey::new(true);
    b.register(&admin, &mut key, "laptop").await;
    let page = b.get("/console/passkeys?done=registered").await;
    assert!(page.body.contains("Sign out, then sign in again"));
    assert_eq!(b.get("/console/users").await.location.as_deref(), Some("/console/passkeys"));
    b.sign_out().await;
    b.sign_in_passkey(&admin, &mut key).await;
    assert_eq!(b.get("/console/users").await.status, StatusCode::OK);
    assert_eq!(b.get("/console/passkeys").await.status, StatusCode::OK);
}

/// The admin's console pages for the sign-in policy (`/console/security`) and "Reset passkeys"
/// (Users) call the API's services: the policy read and change recorded as
/// `/v1/admin/auth-policy` records them, the reset as `reset-passkeys`; other roles are refused
/// and recorded; a form without the CSRF token changes nothing.
#[tokio::test]
async fn console_sign_in_policy_and_reset_passkeys_use_the_api_services() {
    let app = app().await;
    let admin = app.admin().await;
    let (_, otp) = app.create_user(&admin, "nurse.key@general.example", "clinician").await;
    let clinician = app.onboard("nurse.key@general.example", &otp).await;
    let mut c = Browser::new(&app);
    c.sign_in_totp(&clinician).await;
    let mut key = SoftPasskey::new(true);
    c.register(&clinician, &mut key, "ward phone").await;
    let passkeys = |id: String| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM passkey_credentials WHERE user_id = $1::uuid")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(passkeys(clinician.id.clone()).await, 1);
    // Not an admin: the policy page is refused by the service, and recorded.
    assert_eq!(c.get("/console/security").await.status, StatusCode::FORBIDDEN);
    assert!(app.has_event("admin", "denied", "sign-in policy read refused: not an admin").await);

    let mut b = Browser::new(&app);
    b.sign_in_totp(&admin).await;
    let page = b.get("/console/security").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(r#"<label for="allow-passwordless">Allow passwordless sign-in with a passkey</label>"#));
    assert!(!page.body.contains(" checked"), "both policies are off");
    assert!(app.has_event("read", "success", "sign-in policy read").await);
    let a = b.form("/console/security", &[("allow_passwordless", "on")]).await;
    assert_eq!(a.location.as_deref(), Some("/console/security?done=saved"), "{}", a.status);
    assert!(
        app.has_event(
            "admin",
            "success",
            "sign-in policy: require_phishing_resistant false → false, allow_passwordless false → true"
        )
        .await
    );
    let (_, policy) = app.get("/v1/admin/auth-policy", &admin.access).await;
    assert_eq!(policy, json!({ "require_phishing_resistant": false, "allow_passwordless": true }));
    let page = b.get("/console/security?done=saved").await;
    assert!(page.body.contains("The sign-in policy is saved."));
    assert!(
        page.body
            .contains(r#"name="allow_passwordless" value="on" aria-describedby="allow-passwordless-hint" checked"#)
    );
    // Without the CSRF token: refused before the handler, nothing changes.
    let saved = std::mem::replace(&mut b.csrf, "forged".into());
    let a = b.form("/console/security", &[("require_phishing_resistant", "on")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    b.csrf = saved;
    let (_, policy) = app.get("/v1/admin/auth-policy", &admin.access).await;
    assert_eq!(policy["require_phishing_resistant"], false);

    // Users: the confirmation is in the page; its form resets the clinician's passkeys.
    let users = b.get("/console/users").await;
    assert!(users.body.contains(&format!(r#"action="/console/users/{}/reset-passkeys""#, clinician.id)));
    assert!(users.body.contains("Yes, reset passkeys"));
    let a = b.form(&format!("/console/users/{}/reset-passkeys", clinician.id), &[]).await;
    assert_eq!(a.location.as_deref(), Some("/console/users?done=reset-passkeys"), "{}", a.status);
    assert_eq!(passkeys(clinician.id.clone()).await, 0);
    assert!(app.has_event("mfa", "success", "passkeys reset: 1 passkey(s) deleted;").await);
    let page = b.get("/console/users?done=reset-passkeys").await;
    assert!(page.body.contains("The passkeys were reset"));
    // The clinician's console session ended with it.
    assert_eq!(c.get("/console/passkeys").await.status, StatusCode::UNAUTHORIZED);
}
