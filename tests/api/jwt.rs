//! Access-token validation and key loading: only EdDSA tokens signed by our key, unexpired,
//! for our issuer and audience, are accepted — everything else is the same 401. A wrong KEK
//! stops the server from starting.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use custos::auth::tokens::{Claims, JwtKeys};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{TestApp, spawn_app};
use crate::helpers::Staff;

fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

async fn status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/v1/me", token).await.0
}

async fn setup() -> (TestApp, Staff, Claims) {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let claims = claims_of(&admin.access);
    (app, admin, claims)
}

#[tokio::test]
async fn a_token_minted_with_our_key_and_claims_is_accepted() {
    // Positive control for the forgeries below: crafting itself works.
    let (app, _, claims) = setup().await;
    let keys = JwtKeys::from_seed(app.keys.jwt_signing.expose(), "custos", "custos-api").unwrap();
    let fresh = keys.claims(claims.sub, claims.sid, claims.org, claims.role.clone(), app.clock.unix(), 300);
    assert_eq!(status(&app, &keys.issue(&fresh).unwrap()).await, StatusCode::OK);
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let (app, admin, _) = setup().await;
    let kid = JwtKeys::from_seed(app.keys.jwt_signing.expose(), "custos", "custos-api").unwrap().kid().to_owned();
    let header = B64.encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string());
    let payload = admin.access.split('.').nth(1).unwrap();
    assert_eq!(status(&app, &format!("{header}.{payload}.")).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let (app, _, claims) = setup().await;
    let ours = JwtKeys::from_seed(app.keys.jwt_signing.expose(), "custos", "custos-api").unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(ours.kid().to_owned());
    let key = jsonwebtoken::EncodingKey::from_secret(&ours.public_key());
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(status(&app, &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_foreign_key_or_a_tampered_payload_is_rejected() {
    let (app, admin, claims) = setup().await;
    let foreign = JwtKeys::from_seed(&[9u8; 32], "custos", "custos-api").unwrap();
    let fresh = foreign.claims(claims.sub, claims.sid, claims.org, claims.role.clone(), app.clock.unix(), 300);
    assert_eq!(status(&app, &foreign.issue(&fresh).unwrap()).await, StatusCode::UNAUTHORIZED);
    // Our header and signature, another payload (role raised to admin... of a patient id).
    let mut parts = admin.access.split('.');
    let (h, _, sig) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let mut forged = claims.clone();
    forged.role = "auditor".into();
    let payload = B64.encode(serde_json::to_vec(&forged).unwrap());
    assert_eq!(status(&app, &format!("{h}.{payload}.{sig}")).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_or_wrong_audience_or_issuer_is_rejected() {
    let (app, _, claims) = setup().await;
    let seed = app.keys.jwt_signing.expose();
    let ours = JwtKeys::from_seed(seed, "custos", "custos-api").unwrap();
    let old = ours.claims(claims.sub, claims.sid, claims.org, claims.role.clone(), app.clock.unix() - 3600, 600);
    assert_eq!(status(&app, &ours.issue(&old).unwrap()).await, StatusCode::UNAUTHORIZED, "expired");
    let aud = JwtKeys::from_seed(seed, "custos", "someone-else").unwrap();
    let c = aud.claims(claims.sub, claims.sid, claims.org, claims.role.clone(), app.clock.unix(), 300);
    assert_eq!(status(&app, &aud.issue(&c).unwrap()).await, StatusCode::UNAUTHORIZED, "wrong aud");
    let iss = JwtKeys::from_seed(seed, "evil", "custos-api").unwrap();
    let c = iss.claims(claims.sub, claims.sid, claims.org, claims.role.clone(), app.clock.unix(), 300);
    assert_eq!(status(&app, &iss.issue(&c).unwrap()).await, StatusCode::UNAUTHORIZED, "wrong iss");
    // A valid signature for a session that does not exist.
    let c = ours.claims(claims.sub, uuid::Uuid::new_v4(), claims.org, claims.role.clone(), app.clock.unix(), 300);
    assert_eq!(status(&app, &ours.issue(&c).unwrap()).await, StatusCode::UNAUTHORIZED, "unknown session");
}

#[tokio::test]
async fn access_tokens_expire_with_the_server_clock() {
    let (app, admin, _) = setup().await;
    app.clock.advance(std::time::Duration::from_secs(11 * 60)); // TTL 10 min (+5 s skew)
    assert_eq!(status(&app, &admin.access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_server_refuses_to_start_with_a_wrong_kek() {
    let app = spawn_app().await; // created the data keys under app.keys.kek
    let mut keys = app.keys.clone();
    keys.kek = custos::keys::KeyBytes::random();
    let settings = app.db.settings(&[]);
    let err = custos::startup::Application::build(settings, app.pool.clone(), keys).await.err().expect("must refuse");
    assert!(
        matches!(err, custos::startup::StartupError::Keys(custos::crypto::store::KeyStoreError::WrongKek)),
        "{err}"
    );
    assert!(err.to_string().contains("CUSTOS_KEK"));
}

#[tokio::test]
async fn a_token_signed_with_our_key_valid_for_a_year_is_refused_and_recorded() {
    // The attack of issue 19: with a leaked signing key, a token that never needs refreshing.
    let (app, _, claims) = setup().await;
    let ours = JwtKeys::from_seed(app.keys.jwt_signing.expose(), "custos", "custos-api").unwrap();
    let year = ours.claims(claims.sub, claims.sid, claims.org, claims.role.clone(), app.clock.unix(), 365 * 86_400);
    assert_eq!(status(&app, &ours.issue(&year).unwrap()).await, StatusCode::UNAUTHORIZED);
    assert!(
        app.has_event("security", "denied", "lifetime exceeds the configured maximum").await,
        "{:?}",
        app.audit().await
    );
    // The configured lifetime (600 s in tests) itself is accepted: the bound is not below it.
    let ok = ours.claims(claims.sub, claims.sid, claims.org, claims.role.clone(), app.clock.unix(), 600);
    assert_eq!(status(&app, &ours.issue(&ok).unwrap()).await, StatusCode::OK);
    let over = ours.claims(claims.sub, claims.sid, claims.org, claims.role.clone(), app.clock.unix(), 600 + 60);
    assert_eq!(status(&app, &ours.issue(&over).unwrap()).await, StatusCode::UNAUTHORIZED);
}
