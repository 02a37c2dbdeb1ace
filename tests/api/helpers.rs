//! Shared steps: HTTP calls returning (status, JSON), bootstrapping an org, onboarding a
//! staff member through password change and MFA, TOTP codes at the server's clock.

use std::time::Duration;

use custos::auth::totp::{self, TotpSecret};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;

/// A signed-in staff member with MFA enrolled.
pub struct Staff {
    pub id: String,
    pub email: String,
    pub password: String,
    pub secret: TotpSecret,
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

pub const NEW_PASSWORD: &str = "correct horse battery staple orbit";

/// The user agent of a patient's own browser in [`TestApp::register`].
pub const PATIENT_BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) patient-at-home";

impl TestApp {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body)).await
    }

    /// `POST /v1/auth/register` as the patient does it: from the patient's own browser (a user
    /// agent no staff session has), so the issuer-client refusal does not apply.
    pub async fn register(&self, body: Value) -> (StatusCode, Value) {
        self.register_as(PATIENT_BROWSER, body).await
    }

    /// `POST /v1/auth/register` with the given user agent.
    pub async fn register_as(&self, user_agent: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url("/v1/auth/register"))
            .header(reqwest::header::USER_AGENT, user_agent)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post("/v1/auth/login", None, json!({ "email": email, "password": password })).await
    }

    /// The TOTP code `delta` steps away from the server's current step.
    pub fn totp(&self, secret: &TotpSecret, delta: i64) -> String {
        let step = totp::step_at(self.clock.unix()) + delta;
        totp::code_for_step(secret, step).unwrap().to_string()
    }

    /// Moves the server clock to the next step (past any accepted one) and returns its code.
    pub fn fresh_totp(&self, secret: &TotpSecret) -> String {
        self.clock.advance(Duration::from_secs(30));
        self.totp(secret, 0)
    }

    /// Moves the server clock to the middle of a TOTP step, so ±1-step tests cannot straddle
    /// a boundary while the request is in flight.
    pub fn align_mid_step(&self) {
        let ms = self.clock.now().timestamp_millis().rem_euclid(30_000);
        let to_mid = (15_000 - ms).rem_euclid(30_000) as u64;
        self.clock.advance(Duration::from_millis(to_mid));
    }

    /// `custos bootstrap`: an org and its first admin; returns (org id, email, one-time password).
    pub async fn bootstrap(&self, org: &str, email: &str) -> (String, String, String) {
        let out =
            custos::cli::bootstrap::run(&self.pool, &self.keys, org, email).await.map_err(|e| e.to_string()).unwrap();
        (out.org_id.to_string(), out.email, custos::cli::bootstrap::reveal(&out.one_time_password).to_owned())
    }

    /// First login with a one-time password → password change → MFA enrolment → login with TOTP.
    pub async fn onboard(&self, email: &str, otp: &str) -> Staff {
        let (s, body) = self.login(email, otp).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let (s, body) = self
            .post("/v1/me/password", Some(&token), json!({ "current_password": otp, "new_password": NEW_PASSWORD }))
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
        let (s, enrol) = self.post("/v1/me/mfa/enroll", Some(&token), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{enrol}");
        let secret = TotpSecret::from_base32(enrol["secret_base32"].as_str().unwrap()).unwrap();
        let code = self.totp(&secret, 0);
        let (s, body) = self.post("/v1/me/mfa/confirm", Some(&token), json!({ "code": code })).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (s, _) = self.post("/v1/auth/logout", Some(&token), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let staff = self.login_mfa(email, NEW_PASSWORD, &secret).await;
        Staff { secret, ..staff }
    }

    /// Password + a fresh TOTP code → a full session.
    pub async fn login_mfa(&self, email: &str, password: &str, secret: &TotpSecret) -> Staff {
        let (s, body) = self.login(email, password).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["mfa_required"], true, "{body}");
        let code = self.fresh_totp(secret);
        let (s, tokens) =
            self.post("/v1/auth/mfa/verify", None, json!({ "mfa_token": body["mfa_token"], "code": code })).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let (_, me) = self.get("/v1/me", tokens["access_token"].as_str().unwrap()).await;
        Staff {
            id: me["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            secret: secret.clone(),
            access: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
            session_id: tokens["session_id"].as_str().unwrap().to_owned(),
        }
    }

    /// A bootstrapped admin, onboarded with MFA.
    pub async fn admin(&self) -> Staff {
        let (_, email, otp) = self.bootstrap("General Hospital", "admin@general.example").await;
        self.onboard(&email, &otp).await
    }

    /// An admin creates a user; returns (id, one-time password).
    pub async fn create_user(&self, admin: &Staff, email: &str, role: &str) -> (String, String) {
        let (s, body) = self
            .post(
                "/v1/admin/users",
                Some(&admin.access),
                json!({ "email": email, "role": role, "display_name": "Dr. Test" }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        (body["id"].as_str().unwrap().to_owned(), body["one_time_password"].as_str().unwrap().to_owned())
    }

    /// Audit events recorded so far (superuser view of the inbox): (action, outcome, reason).
    pub async fn audit(&self) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as("SELECT action::text, outcome::text, reason FROM audit_inbox ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    pub async fn has_event(&self, action: &str, outcome: &str, reason_part: &str) -> bool {
        self.audit()
            .await
            .iter()
            .any(|(a, o, r)| a == action && o == outcome && r.as_deref().is_some_and(|r| r.contains(reason_part)))
    }
}
