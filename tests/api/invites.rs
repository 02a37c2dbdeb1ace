//! Patient portal invites: issued by an admin (or a clinician with access), single use,
//! 72 hours, stored hashed; redeemed by registering a patient account linked to the record.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::common::{TestApp, spawn_app, spawn_app_with};

pub const BIRTH_DATE: &str = "1980-02-03";

/// A bare patient record born on [`BIRTH_DATE`] (sealed with the server's keys, as the
/// clinical endpoints do), inserted as the superuser.
pub async fn patient(app: &TestApp, org: &str) -> Uuid {
    let id = Uuid::new_v4();
    let blob = vec![0u8; 40];
    let kek = custos::crypto::Kek::from_bytes(*app.keys.kek.expose());
    let crypto = custos::crypto::store::load(&app.pool, &kek).await.unwrap();
    let birth = crypto.keyring.seal_str("patients", "birth_date_enc", id, BIRTH_DATE).unwrap();
    sqlx::query(
        "INSERT INTO patients (id, org_id, mrn_enc, mrn_bidx, given_name_enc, family_name_enc, birth_date_enc) \
         VALUES ($1, $2::uuid, $3, $4, $3, $3, $5)",
    )
    .bind(id)
    .bind(org)
    .bind(&blob)
    .bind(Uuid::new_v4().as_bytes().repeat(2))
    .bind(&birth)
    .execute(&app.db.pool)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn an_invite_registers_one_patient_account_once() {
    let app = spawn_app().await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let (s, inv) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    let code = inv["invite_code"].as_str().unwrap();
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT code_hash FROM patient_invites").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(stored.len(), 32, "stored hashed");

    let reg = |email: &str, password: &str| json!({ "invite_code": code, "birth_date": BIRTH_DATE, "email": email, "password": password });
    let (s, b) = app.post("/v1/auth/register", None, reg("jdoe@mail.example", "short")).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("password_policy")));
    let (s, _) = app.post("/v1/auth/register", None, reg("nope", "a long patient passphrase 42")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = app.post("/v1/auth/register", None, reg("jdoe@mail.example", "twelve chars")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "patients need 15 characters: {b}");
    let (s, b) = app.post("/v1/auth/register", None, reg("jdoe@mail.example", "a long patient passphrase 42")).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let user_id = b["user_id"].as_str().unwrap();
    let linked: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM patients WHERE id = $1").bind(p).fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(linked.unwrap().to_string(), user_id);

    let (s, _) = app.post("/v1/auth/register", None, reg("jdoe2@mail.example", "a long patient passphrase 42")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "single use");
    let (s, t) = app.login("jdoe@mail.example", "a long patient passphrase 42").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t["mfa_enrollment_required"], false, "MFA optional for patients");
    let (s, me) = app.get("/v1/me", t["access_token"].as_str().unwrap()).await;
    assert_eq!((s, me["role"].as_str()), (StatusCode::OK, Some("patient")));
    let (s, _) = app.get("/v1/me/sessions", t["access_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "patients without MFA have full sessions");
    let (s, _) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "already registered");
    assert!(app.has_event("create", "success", "invite issued").await);
    assert!(app.has_event("create", "success", "invite used").await);
}

#[tokio::test]
async fn invites_expire_and_are_confined_to_who_may_see_the_patient() {
    let app = spawn_app().await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let (_, inv) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    app.clock.advance(Duration::from_secs(73 * 3600));
    let admin = app.login_mfa(&admin.email, &admin.password, &admin.secret).await;
    let body = json!({ "invite_code": inv["invite_code"], "birth_date": BIRTH_DATE, "email": "jdoe@mail.example", "password": "a long patient passphrase 42" });
    let (s, _) = app.post("/v1/auth/register", None, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "expired after 72 h");
    assert!(app.has_event("create", "denied", "unknown, used or expired invite").await);

    let (s, _) = app.post(&format!("/v1/patients/{}/invite", Uuid::new_v4()), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A clinician not on the patient's care team cannot see it, so cannot invite.
    let (_, c_otp) = app.create_user(&admin, "doc@clinic.example", "clinician").await;
    let doc = app.onboard("doc@clinic.example", &c_otp).await;
    let (s, _) = app.post(&format!("/v1/patients/{p}/invite"), Some(&doc.access), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Another organization's admin neither.
    let (_, e2, o2) = app.bootstrap("Elsewhere", "admin@elsewhere.example").await;
    let other = app.onboard(&e2, &o2).await;
    let (s, _) = app.post(&format!("/v1/patients/{p}/invite"), Some(&other.access), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Issue 19: the 422 of a weak password named the right date of birth (a wrong date got 400
/// first). The password policy is now checked before anything is compared: right and wrong
/// dates with a weak password get the same answer, and neither uses up an attempt.
#[tokio::test]
async fn a_weak_password_does_not_reveal_whether_the_date_of_birth_is_right() {
    let app = spawn_app().await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let (_, inv) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    let code = inv["invite_code"].as_str().unwrap();
    let reg = |birth: &str, password: &str| json!({ "invite_code": code, "birth_date": birth, "email": "jdoe@mail.example", "password": password });
    let (s_right, right) = app.post("/v1/auth/register", None, reg(BIRTH_DATE, "short")).await;
    let (s_wrong, wrong) = app.post("/v1/auth/register", None, reg("1999-01-01", "short")).await;
    assert_eq!((s_right, &right), (s_wrong, &wrong), "same answer whatever the date");
    assert_eq!(s_right, StatusCode::UNPROCESSABLE_ENTITY);
    for _ in 0..6 {
        let (s, _) = app.post("/v1/auth/register", None, reg("1999-01-01", "short")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Nothing was compared, so nothing was consumed: the right date still redeems.
    let (s, b) = app.post("/v1/auth/register", None, reg(BIRTH_DATE, "a long patient passphrase 42")).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// Issue 19: sixty parallel guesses against one invite compared 11 to 26 wrong dates (the
/// limit is 5). Attempts are now counted under the invite's row lock before comparing: at most
/// 5 comparisons, every attempt recorded, and the invite consumed.
#[tokio::test]
async fn sixty_parallel_guesses_get_at_most_five_comparisons() {
    // All 60 hash their passwords at once, so they reach the invite together.
    let app =
        spawn_app_with(&[("CUSTOS_AUTH_RATE_PER_MINUTE", "100000"), ("CUSTOS_PASSWORD_HASH_CONCURRENCY", "64")]).await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let (_, inv) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    let code = inv["invite_code"].as_str().unwrap().to_owned();
    let guesses = (0..60).map(|i| {
        let body = json!({ "invite_code": code, "birth_date": format!("19{:02}-01-01", i + 10),
                           "email": format!("g{i}@mail.example"), "password": "a long patient passphrase 42" });
        let app = &app;
        async move { app.post("/v1/auth/register", None, body).await.0 }
    });
    let answers = futures_util::future::join_all(guesses).await;
    assert!(answers.iter().all(|s| *s == StatusCode::BAD_REQUEST), "{answers:?}");
    let audit = app.audit().await;
    let compared = audit
        .iter()
        .filter(|(_, _, r)| r.as_deref().is_some_and(|r| r.contains("date of birth does not match")))
        .count();
    assert!(compared <= 5, "{compared} wrong dates compared");
    let refused = audit.iter().filter(|(a, o, _)| a == "create" && o == "denied").count();
    assert!(refused >= 60, "every attempt recorded: {refused}");
    let (s, _) = app
        .post(
            "/v1/auth/register",
            None,
            json!({ "invite_code": code, "birth_date": BIRTH_DATE,
            "email": "jdoe@mail.example", "password": "a long patient passphrase 42" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "consumed");
}
