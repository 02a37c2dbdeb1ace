//! Patient portal invites: issued by an admin (or a clinician with access), single use,
//! 72 hours, stored hashed; redeemed by registering a patient account linked to the record.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::common::{TestApp, spawn_app, spawn_app_with};

pub const BIRTH_DATE: &str = "1980-02-03";
/// The patient's email in the chart: where the invite code goes.
pub const PATIENT_EMAIL: &str = "jdoe@mail.example";

/// A bare patient record born on [`BIRTH_DATE`] with [`PATIENT_EMAIL`] on file (sealed with
/// the server's keys, as the clinical endpoints do), inserted as the superuser.
pub async fn patient(app: &TestApp, org: &str) -> Uuid {
    patient_with_email(app, org, Some(PATIENT_EMAIL)).await
}

/// [`patient`] with the given email on file, or none.
pub async fn patient_with_email(app: &TestApp, org: &str, email: Option<&str>) -> Uuid {
    let id = Uuid::new_v4();
    let blob = vec![0u8; 40];
    let kek = custos::crypto::Kek::from_bytes(*app.keys.kek.expose());
    let crypto = custos::crypto::store::load(&app.pool, &kek).await.unwrap();
    let birth = crypto.keyring.seal_str("patients", "birth_date_enc", id, BIRTH_DATE).unwrap();
    let email = email.map(|e| crypto.keyring.seal_str("patients", "email_enc", id, e).unwrap());
    sqlx::query(
        "INSERT INTO patients (id, org_id, mrn_enc, mrn_bidx, given_name_enc, family_name_enc, birth_date_enc, email_enc) \
         VALUES ($1, $2::uuid, $3, $4, $3, $3, $5, $6)",
    )
    .bind(id)
    .bind(org)
    .bind(&blob)
    .bind(Uuid::new_v4().as_bytes().repeat(2))
    .bind(&birth)
    .bind(email)
    .execute(&app.db.pool)
    .await
    .unwrap();
    id
}

/// Every (recipient, code) the development outbox file holds, oldest first: what the patient
/// finds in their mailbox.
pub fn mailbox(app: &TestApp) -> Vec<(String, String)> {
    let path = app.db.data_dir().join(custos::auth::outbox_sender::DEV_FILE);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut to = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("To: ") {
            to = t.trim().to_owned();
        } else if let Some(code) = line.strip_prefix(custos::auth::outbox::INVITE_CODE_LINE) {
            out.push((to.clone(), code.trim().to_owned()));
        }
    }
    out
}

/// The code of the invite just issued, as the patient receives it: waits until the server's
/// outbox sender delivered the invite's message (to the development file), then takes the
/// newest message to `to`.
pub async fn delivered_code(app: &TestApp, invite: &serde_json::Value, to: &str) -> String {
    let invite_id: Uuid = invite["invite_id"].as_str().expect("invite_id").parse().unwrap();
    for _ in 0..200 {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_messages WHERE invite_id = $1")
            .bind(invite_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        if pending == 0 {
            let codes = mailbox(app);
            let code = codes.iter().rev().find(|(t, _)| t.contains(to)).map(|(_, c)| c.clone());
            return code.unwrap_or_else(|| panic!("no message to {to} in the outbox file: {codes:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox sender did not deliver invite {invite_id} within 10 s");
}

/// Issues an invite as `staff` and returns the code the patient received at [`PATIENT_EMAIL`].
pub async fn invite_code(app: &TestApp, staff: &crate::helpers::Staff, p: Uuid) -> String {
    let (s, inv) = app.post(&format!("/v1/patients/{p}/invite"), Some(&staff.access), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    assert!(inv.get("invite_code").is_none(), "the issuer never sees the code: {inv}");
    delivered_code(app, &inv, PATIENT_EMAIL).await
}

#[tokio::test]
async fn an_invite_registers_one_patient_account_once() {
    let app = spawn_app().await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let (s, inv) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["delivery"], "email", "{inv}");
    assert!(inv["expires_at"].is_string() && inv.get("invite_code").is_none(), "no code for the issuer: {inv}");
    let code = &delivered_code(&app, &inv, PATIENT_EMAIL).await;
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT code_hash FROM patient_invites").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(stored.len(), 32, "stored hashed");

    let reg = |email: &str, password: &str| json!({ "invite_code": code, "birth_date": BIRTH_DATE, "email": email, "password": password });
    let (s, b) = app.register(reg("jdoe@mail.example", "short")).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("password_policy")));
    let (s, _) = app.register(reg("nope", "a long patient passphrase 42")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = app.register(reg("jdoe@mail.example", "twelve chars")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "patients need 15 characters: {b}");
    let (s, b) = app.register(reg("jdoe@mail.example", "a long patient passphrase 42")).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let user_id = b["user_id"].as_str().unwrap();
    let linked: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM patients WHERE id = $1").bind(p).fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(linked.unwrap().to_string(), user_id);

    let (s, _) = app.register(reg("jdoe2@mail.example", "a long patient passphrase 42")).await;
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
    let code = invite_code(&app, &admin, p).await;
    app.clock.advance(Duration::from_secs(73 * 3600));
    let admin = app.login_mfa(&admin.email, &admin.password, &admin.secret).await;
    let body = json!({ "invite_code": code, "birth_date": BIRTH_DATE, "email": "jdoe@mail.example", "password": "a long patient passphrase 42" });
    let (s, _) = app.register(body).await;
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
    let code = &invite_code(&app, &admin, p).await;
    let reg = |birth: &str, password: &str| json!({ "invite_code": code, "birth_date": birth, "email": "jdoe@mail.example", "password": password });
    let (s_right, right) = app.register(reg(BIRTH_DATE, "short")).await;
    let (s_wrong, wrong) = app.register(reg("1999-01-01", "short")).await;
    assert_eq!((s_right, &right), (s_wrong, &wrong), "same answer whatever the date");
    assert_eq!(s_right, StatusCode::UNPROCESSABLE_ENTITY);
    for _ in 0..6 {
        let (s, _) = app.register(reg("1999-01-01", "short")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Nothing was compared, so nothing was consumed: the right date still redeems.
    let (s, b) = app.register(reg(BIRTH_DATE, "a long patient passphrase 42")).await;
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
    let code = invite_code(&app, &admin, p).await;
    let guesses = (0..60).map(|i| {
        let body = json!({ "invite_code": code, "birth_date": format!("19{:02}-01-01", i + 10),
                           "email": format!("g{i}@mail.example"), "password": "a long patient passphrase 42" });
        let app = &app;
        async move { app.register(body).await.0 }
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
        .register(json!({ "invite_code": code, "birth_date": BIRTH_DATE,
            "email": "jdoe@mail.example", "password": "a long patient passphrase 42" }))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "consumed");
}

/// Issue 19: the code never reaches the issuer; a patient with no email on file cannot be
/// invited (nothing would reach them), with a clear field.
#[tokio::test]
async fn a_patient_with_no_email_on_file_gets_no_invite() {
    let app = spawn_app().await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient_with_email(&app, &org, None).await;
    let (s, b) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "email", "{b}");
    let invites: i64 =
        sqlx::query_scalar("SELECT count(*) FROM patient_invites").fetch_one(&app.db.pool).await.unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_messages").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!((invites, queued), (0, 0));
}

/// Issue 19: without a relay (development), the sender delivers to the development file
/// (mode 0600) and the outbox keeps nothing; issue and delivery are both in the ledger, and
/// neither names the code or the address.
#[tokio::test]
async fn the_code_travels_sealed_through_the_outbox_to_a_private_development_file() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let code = invite_code(&app, &admin, p).await;
    let file = app.db.data_dir().join(custos::auth::outbox_sender::DEV_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the operator reads the development outbox");
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_messages").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(queued, 0, "delivered messages leave the outbox");
    assert!(app.has_event("create", "success", "invite issued").await);
    assert!(app.has_event("create", "success", "invite delivered to the patient's email on file").await);
    for (_, _, reason) in app.audit().await {
        let reason = reason.unwrap_or_default();
        assert!(!reason.contains(&code) && !reason.contains(PATIENT_EMAIL), "{reason}");
    }
}

/// A one-message SMTP sink: accepts one connection, speaks just enough SMTP for the sender,
/// and hands over (recipients, message).
async fn smtp_sink() -> (u16, tokio::sync::oneshot::Receiver<(Vec<String>, String)>) {
    smtp_sink_answering_rcpt("250 OK").await
}

/// [`smtp_sink`] answering every RCPT TO with `rcpt_reply`.
async fn smtp_sink_answering_rcpt(
    rcpt_reply: &'static str,
) -> (u16, tokio::sync::oneshot::Receiver<(Vec<String>, String)>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"220 sink.test ESMTP\r\n").await.unwrap();
        let (mut rcpt, mut data) = (Vec::new(), String::new());
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-sink.test\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                b"250 OK\r\n"
            } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
                rcpt.push(to.trim().trim_matches(['<', '>']).to_ascii_lowercase());
                w.write_all(format!("{rcpt_reply}\r\n").as_bytes()).await.unwrap();
                continue;
            } else if upper == "DATA" {
                w.write_all(b"354 go ahead\r\n").await.unwrap();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push('\n');
                }
                b"250 queued\r\n"
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                b"250 OK\r\n"
            } else {
                b"502 not implemented\r\n"
            };
            w.write_all(reply).await.unwrap();
        }
        let _ = done.send((rcpt, data));
    });
    (port, rx)
}

/// Issue 19: with CUSTOS_SMTP_URL set, the code goes by SMTP to the patient's email on file;
/// the patient registers with the code from the mail.
#[tokio::test]
async fn the_code_goes_by_smtp_to_the_patients_email_and_registers_the_patient() {
    let (port, mail) = smtp_sink().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let app =
        spawn_app_with(&[("CUSTOS_SMTP_URL", &url), ("CUSTOS_SMTP_FROM", "Clinic <no-reply@clinic.example>")]).await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let (s, inv) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    assert!(inv.get("invite_code").is_none(), "{inv}");
    let (rcpt, data) = tokio::time::timeout(Duration::from_secs(20), mail).await.expect("a mail").unwrap();
    assert_eq!(rcpt, [PATIENT_EMAIL]);
    assert!(data.contains("From: Clinic <no-reply@clinic.example>"), "{data}");
    let code = data
        .lines()
        .find_map(|l| l.strip_prefix(custos::auth::outbox::INVITE_CODE_LINE))
        .unwrap_or_else(|| panic!("no code in {data}"))
        .trim()
        .to_owned();
    let body = json!({ "invite_code": code, "birth_date": BIRTH_DATE, "email": PATIENT_EMAIL,
                       "password": "a long patient passphrase 42" });
    let (s, b) = app.register(body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(app.has_event("create", "success", "invite delivered to the patient's email on file (smtp").await);
    assert!(!app.db.data_dir().join(custos::auth::outbox_sender::DEV_FILE).exists(), "no development file");
}

/// Issue 19: a relay that cannot be reached: the attempt is counted (metric, row, ledger) and
/// retried with back-off, the message staying sealed in the outbox meanwhile.
#[tokio::test]
async fn an_unreachable_relay_is_retried_with_back_off_and_counted() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app_with(&[("CUSTOS_SMTP_URL", &url)]).await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let (s, _) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut row = None;
    for _ in 0..200 {
        let r: (i32, Option<String>, bool) = sqlx::query_as(
            "SELECT attempts, last_error, next_attempt_at > $1 + interval '20 seconds' FROM outbox_messages",
        )
        .bind(app.clock.now())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if r.0 > 0 {
            row = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(row, Some((1, Some("connection".to_owned()), true)), "one failed attempt, the next in 30 s");
    // Meanwhile the row holds neither the address nor the code in clear.
    let (to, body): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT recipient_enc, body_enc FROM outbox_messages").fetch_one(&app.db.pool).await.unwrap();
    for sealed in [&to, &body] {
        let text = String::from_utf8_lossy(sealed);
        assert!(!text.contains("jdoe") && !text.contains("Invite code"), "sealed: {text}");
    }
    assert!(app.has_event("create", "error", "invite delivery failed, attempt 1 (smtp: connection)").await);
    let metrics = custos::metrics::handle().map(|h| h.render()).unwrap_or_default();
    assert!(metrics.contains(custos::metrics::OUTBOX_FAILURES), "{metrics}");
}

/// Issue 19: a redemption from the issuer's own client — the address and user agent of one
/// of the issuer's live sessions — is refused with the answer of every other failure and
/// recorded with its reason code; the patient's own browser redeems the same code.
#[tokio::test]
async fn a_redemption_from_the_issuers_own_client_is_refused_and_recorded() {
    let app = spawn_app().await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let code = invite_code(&app, &admin, p).await;
    let reg = json!({ "invite_code": code, "birth_date": BIRTH_DATE, "email": PATIENT_EMAIL,
                      "password": "a long patient passphrase 42" });
    // The admin signed in from this test client (no user agent): the same client registers.
    let (s, from_issuer) = app.post("/v1/auth/register", None, reg.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{from_issuer}");
    let (_, bad_code) = app
        .register(json!({ "invite_code": "not-a-code", "birth_date": BIRTH_DATE,
        "email": PATIENT_EMAIL, "password": "a long patient passphrase 42" }))
        .await;
    assert_eq!(from_issuer, bad_code, "the same answer as any other failure");
    assert!(
        app.has_event(
            "create",
            "denied",
            &format!(
                "issuer_client: registration refused from the client of a live session of the invite's issuer ({})",
                admin.id
            )
        )
        .await
    );
    let linked: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM patients WHERE id = $1").bind(p).fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(linked, None);
    // Nothing was compared or consumed: the patient's own browser registers with the code.
    let (s, b) = app.register(reg).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// Issue 19: a relay that refuses the address for good (5xx) abandons the message at once:
/// deleted with its code, counted, and the abandonment in the ledger — without the relay's
/// words, which quote the address.
#[tokio::test]
async fn a_permanent_refusal_abandons_the_message_and_records_it() {
    let (port, _mail) = smtp_sink_answering_rcpt("550 5.1.1 <jdoe@mail.example>: no such user").await;
    let url = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app_with(&[("CUSTOS_SMTP_URL", &url)]).await;
    let (org, email, otp) = app.bootstrap("Clinic", "admin@clinic.example").await;
    let admin = app.onboard(&email, &otp).await;
    let p = patient(&app, &org).await;
    let (s, _) = app.post(&format!("/v1/patients/{p}/invite"), Some(&admin.access), json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let reason = "invite delivery abandoned after attempt 1 (smtp: permanent); issue a new invite";
    for _ in 0..200 {
        if app.has_event("create", "error", reason).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.has_event("create", "error", reason).await);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_messages").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(queued, 0, "abandoned messages leave the outbox");
    assert!(app.audit().await.iter().all(|(_, _, r)| !r.as_deref().unwrap_or_default().contains("jdoe")));
    let metrics = custos::metrics::handle().map(|h| h.render()).unwrap_or_default();
    assert!(metrics.contains(custos::metrics::OUTBOX_ABANDONED), "{metrics}");
}
