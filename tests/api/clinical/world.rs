//! A clinical world over HTTP: two organizations, users with live MFA-verified sessions
//! inserted directly (the issue allows it) and tokens minted with the server's JWT key;
//! patients created through the API by the admin, care teams assigned through the API.
//!
//! Org A: patients P1 (portal user pa1), P2 (pa2); clinician ca1 on both care teams;
//! clinician ca2 on none; admin aa; auditor ua. Org B: patient P3 (pb), clinician cb, admin ab.

use custos::auth::tokens::JwtKeys;
use custos::crypto::store::FieldCrypto;
use custos::crypto::{BlindIndexKind, Kek};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;

#[derive(Clone)]
pub struct Actor {
    pub id: Uuid,
    pub token: String,
    pub name: &'static str,
}

pub struct World {
    pub org_a: Uuid,
    pub org_b: Uuid,
    pub p1: Uuid,
    pub p2: Uuid,
    pub p3: Uuid,
    pub pa1: Actor,
    pub pa2: Actor,
    pub ca1: Actor,
    pub ca2: Actor,
    pub aa: Actor,
    pub ua: Actor,
    pub pb: Actor,
    pub cb: Actor,
    pub ab: Actor,
}

pub async fn crypto(app: &TestApp) -> FieldCrypto {
    custos::crypto::store::load(&app.pool, &Kek::from_bytes(*app.keys.kek.expose())).await.unwrap()
}

async fn org(app: &TestApp, name: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO organizations (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A user with a live, MFA-verified session and a fresh access token.
pub async fn actor(app: &TestApp, fc: &FieldCrypto, org: Uuid, role: &str, name: &'static str) -> Actor {
    let id = Uuid::now_v7();
    let email = format!("{}@{}.example", Uuid::new_v4().simple(), role);
    let email_enc = fc.keyring.seal_str("users", "email_enc", id, &email).unwrap();
    let bidx = fc.blind.index(BlindIndexKind::Email, &email);
    sqlx::query(
        "INSERT INTO users (id, org_id, role, email_enc, email_bidx, password_hash) VALUES ($1, $2, $3::user_role, $4, $5, '$argon2id$fixture')",
    )
    .bind(id)
    .bind(org)
    .bind(role)
    .bind(&email_enc)
    .bind(&bidx[..])
    .execute(&app.pool)
    .await
    .unwrap();
    let sid: Uuid = sqlx::query_scalar(
        "INSERT INTO sessions (org_id, user_id, mfa_verified, expires_at) VALUES ($1, $2, true, now() + interval '4 hours') RETURNING id",
    )
    .bind(org)
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let keys = JwtKeys::from_seed(app.keys.jwt_signing.expose(), "custos", "custos-api").unwrap();
    let token = keys.issue(&keys.claims(id, sid, org, role, app.clock.unix(), 600)).unwrap();
    Actor { id, token, name }
}

pub fn patient_body(mrn: &str, given: &str) -> Value {
    json!({ "mrn": mrn, "given_name": given, "family_name": "Testperson", "birth_date": "1980-02-29",
            "sex": "female", "phone": "+1 555 0100", "email": format!("{given}@mail.example"), "address": "1 Main St" })
}

/// Creates a patient as `by` (admin or clinician) and links the portal user.
pub async fn patient(app: &TestApp, by: &Actor, mrn: &str, portal: Option<&Actor>) -> Uuid {
    let (s, body) = app.post("/v1/patients", Some(&by.token), patient_body(mrn, "Pat")).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    if let Some(p) = portal {
        sqlx::query("UPDATE patients SET user_id = $1 WHERE id = $2")
            .bind(p.id)
            .bind(id)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    id
}

pub async fn assign(app: &TestApp, admin: &Actor, patient: Uuid, clinician: &Actor) {
    let (s, body) = app
        .post(&format!("/v1/patients/{patient}/care-team"), Some(&admin.token), json!({ "clinician_id": clinician.id }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

pub async fn build(app: &TestApp) -> World {
    let fc = crypto(app).await;
    let (org_a, org_b) = (org(app, "Org A").await, org(app, "Org B").await);
    let pa1 = actor(app, &fc, org_a, "patient", "patient P1").await;
    let pa2 = actor(app, &fc, org_a, "patient", "patient P2").await;
    let ca1 = actor(app, &fc, org_a, "clinician", "clinician on team").await;
    let ca2 = actor(app, &fc, org_a, "clinician", "clinician off team").await;
    let aa = actor(app, &fc, org_a, "admin", "admin A").await;
    let ua = actor(app, &fc, org_a, "auditor", "auditor A").await;
    let pb = actor(app, &fc, org_b, "patient", "patient org B").await;
    let cb = actor(app, &fc, org_b, "clinician", "clinician org B").await;
    let ab = actor(app, &fc, org_b, "admin", "admin B").await;
    let p1 = patient(app, &aa, "MRN-P1", Some(&pa1)).await;
    let p2 = patient(app, &aa, "MRN-P2", Some(&pa2)).await;
    let p3 = patient(app, &ab, "MRN-P3", Some(&pb)).await;
    assign(app, &aa, p1, &ca1).await;
    assign(app, &aa, p2, &ca1).await;
    assign(app, &ab, p3, &cb).await;
    World { org_a, org_b, p1, p2, p3, pa1, pa2, ca1, ca2, aa, ua, pb, cb, ab }
}

/// Sends any method with an optional JSON body.
pub async fn call(app: &TestApp, method: &str, path: &str, who: &Actor, body: Option<Value>) -> (StatusCode, Value) {
    app.send(method.parse().unwrap(), path, Some(&who.token), body).await
}

pub type Event = (String, String, String, bool, Option<String>);

/// Audit events of an actor, in order, from the inbox and (once sequenced) the log, as
/// (action, resource_type, outcome, break_glass, reason).
pub async fn events(app: &TestApp, actor: Uuid) -> Vec<Event> {
    sqlx::query_as(
        "SELECT action::text, resource_type, outcome::text, break_glass, reason FROM ( \
           SELECT occurred_at, event_id, action, resource_type, outcome, break_glass, reason, actor_id FROM audit_inbox \
           UNION ALL \
           SELECT occurred_at, event_id, action, resource_type, outcome, break_glass, reason, actor_id FROM audit_log) e \
         WHERE actor_id = $1 ORDER BY occurred_at, event_id",
    )
    .bind(actor)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}
