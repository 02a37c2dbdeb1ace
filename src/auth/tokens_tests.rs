//! Tests of `tokens`: opaque tokens, and JWT issue/validate including the attacks
//! (`alg: none`, HS256 with the public key, foreign key, unknown kid) and key rotation.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::tokens::*;

const ISS: &str = "custos";
const AUD: &str = "custos-api";
const NOW: i64 = 1_750_000_000;

fn keys(seed: u8) -> JwtKeys {
    JwtKeys::from_seed(&[seed; 32], ISS, AUD).unwrap()
}

fn claims(k: &JwtKeys) -> Claims {
    k.claims(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), "clinician", NOW, 600)
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

#[test]
fn opaque_tokens_are_256_bit_base64url_and_hash_consistently() {
    let (t1, h1) = new_opaque_token();
    let (t2, h2) = new_opaque_token();
    let t1 = t1.expose_secret();
    assert_eq!(t1.len(), 43);
    assert!(t1.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(URL_SAFE_NO_PAD.decode(t1).unwrap().len(), 32);
    assert_ne!(t1, t2.expose_secret());
    assert_ne!(h1, h2);
    assert_eq!(hash_opaque_token(t1), Some(h1));
    assert_eq!(hash_opaque_token(&format!(" {t1}\n")), Some(h1));
    assert_eq!(hash_opaque_token(&t1[..42]), None);
    assert_eq!(hash_opaque_token(&format!("{t1}AA")), None);
    assert_eq!(hash_opaque_token("!!!not-base64!!!"), None);
    assert_eq!(hash_opaque_token(""), None);
}

#[test]
fn ct_eq_compares_contents() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"abcd"));
}

#[test]
fn kid_is_16_hex_chars_of_sha256_of_public_key() {
    let k = keys(1);
    assert_eq!(k.kid().len(), 16);
    assert!(k.kid().chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(k.kid(), kid_for(&k.public_key()));
    let pk = SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes();
    assert_eq!(k.public_key(), pk);
    assert_ne!(keys(2).kid(), k.kid());
}

#[test]
fn seed_from_base64_env_value() {
    let seed = [9u8; 32];
    let std_b64 = SecretString::from(STANDARD.encode(seed));
    let url_b64 = SecretString::from(URL_SAFE_NO_PAD.encode(seed));
    let a = JwtKeys::from_base64_seed(&std_b64, ISS, AUD).unwrap();
    let b = JwtKeys::from_base64_seed(&url_b64, ISS, AUD).unwrap();
    assert_eq!(a.kid(), b.kid());
    assert_eq!(a.kid(), keys(9).kid());
    let short = SecretString::from(STANDARD.encode([9u8; 31]));
    assert!(JwtKeys::from_base64_seed(&short, ISS, AUD).is_err());
    assert!(JwtKeys::from_base64_seed(&SecretString::from("***"), ISS, AUD).is_err());
    let generated = generate_seed_base64();
    assert!(JwtKeys::from_base64_seed(&generated, ISS, AUD).is_ok());
    let dbg = format!("{a:?}");
    assert!(dbg.contains(a.kid()) && !dbg.contains(&STANDARD.encode(seed)));
}

#[test]
fn valid_token_round_trips() {
    let k = keys(1);
    let c = claims(&k);
    let token = k.issue(&c).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(k.kid()));
    assert_eq!(k.validate(&token, NOW).unwrap(), c);
    assert_eq!(c.exp - c.iat, 600);
    assert_eq!((c.iss.as_str(), c.aud.as_str(), c.role.as_str()), (ISS, AUD, "clinician"));
}

#[test]
fn alg_none_rejected() {
    let k = keys(1);
    let token = k.issue(&claims(&k)).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    for alg in ["none", "None", "NONE"] {
        let header = b64(&serde_json::json!({"alg": alg, "typ": "JWT", "kid": k.kid()}));
        for sig in ["", "AAAA"] {
            let forged = format!("{header}.{payload}.{sig}");
            assert!(k.validate(&forged, NOW).is_err(), "alg {alg} accepted");
        }
    }
}

#[test]
fn hs256_signed_with_public_key_rejected() {
    let k = keys(1);
    let c = claims(&k);
    let pk = k.public_key();
    let pem_like = STANDARD.encode(pk);
    for secret in [pk.to_vec(), pem_like.into_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(k.kid().to_owned());
        let forged = jsonwebtoken::encode(&header, &c, &EncodingKey::from_secret(&secret)).unwrap();
        assert!(matches!(k.validate(&forged, NOW), Err(TokenError::UnsupportedAlgorithm)));
    }
}

#[test]
fn foreign_key_rejected() {
    let k = keys(1);
    let c = claims(&k);
    // Foreign key claiming our kid: signature fails.
    let der = SigningKey::from_bytes(&[66; 32]).to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(k.kid().to_owned());
    let forged = jsonwebtoken::encode(&header, &c, &EncodingKey::from_ed_der(der.as_bytes())).unwrap();
    assert!(matches!(k.validate(&forged, NOW), Err(TokenError::BadSignature)));
    // Foreign key under its own kid: unknown key.
    let other = keys(66).issue(&c).unwrap();
    assert!(matches!(k.validate(&other, NOW), Err(TokenError::UnknownKey)));
}

#[test]
fn expired_rejected_with_at_most_5s_skew() {
    let k = keys(1);
    let c = claims(&k);
    let token = k.issue(&c).unwrap();
    assert!(k.validate(&token, c.exp).is_ok());
    assert!(k.validate(&token, c.exp + CLOCK_SKEW_SECS).is_ok());
    assert!(matches!(k.validate(&token, c.exp + CLOCK_SKEW_SECS + 1), Err(TokenError::Expired)));
    assert!(matches!(k.validate(&token, c.exp + 3600), Err(TokenError::Expired)));
}

#[test]
fn issued_in_the_future_rejected() {
    let k = keys(1);
    let token = k.issue(&claims(&k)).unwrap();
    assert!(k.validate(&token, NOW - CLOCK_SKEW_SECS).is_ok());
    assert!(matches!(k.validate(&token, NOW - 60), Err(TokenError::NotYetValid)));
}

#[test]
fn wrong_audience_rejected() {
    let other_aud = JwtKeys::from_seed(&[1; 32], ISS, "someone-else").unwrap();
    let token = other_aud.issue(&claims(&other_aud)).unwrap();
    assert!(matches!(keys(1).validate(&token, NOW), Err(TokenError::WrongAudience)));
}

#[test]
fn wrong_issuer_rejected() {
    let other_iss = JwtKeys::from_seed(&[1; 32], "evil", AUD).unwrap();
    let token = other_iss.issue(&claims(&other_iss)).unwrap();
    assert!(matches!(keys(1).validate(&token, NOW), Err(TokenError::WrongIssuer)));
}

#[test]
fn unknown_or_missing_kid_rejected() {
    let k = keys(1);
    let c = claims(&k);
    let der = SigningKey::from_bytes(&[1; 32]).to_pkcs8_der().unwrap();
    let enc = EncodingKey::from_ed_der(der.as_bytes());
    for kid in [Some("deadbeefdeadbeef".to_owned()), None] {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid;
        let token = jsonwebtoken::encode(&header, &c, &enc).unwrap();
        assert!(matches!(k.validate(&token, NOW), Err(TokenError::UnknownKey)));
    }
}

#[test]
fn rotated_key_still_validates() {
    let old = keys(1);
    let token = old.issue(&claims(&old)).unwrap();
    let mut new = keys(2);
    assert!(matches!(new.validate(&token, NOW), Err(TokenError::UnknownKey)));
    new.add_verification_key(&old.public_key()).unwrap();
    assert!(new.validate(&token, NOW).is_ok());
    let mut via_b64 = keys(3);
    via_b64.add_verification_key_base64(&STANDARD.encode(old.public_key())).unwrap();
    assert!(via_b64.validate(&token, NOW).is_ok());
    // New tokens are signed with the new key only.
    let fresh = new.issue(&claims(&new)).unwrap();
    assert!(old.validate(&fresh, NOW).is_err());
    assert!(via_b64.add_verification_key_base64("short").is_err());
}

#[test]
fn tampered_or_garbage_tokens_rejected() {
    let k = keys(1);
    let token = k.issue(&claims(&k)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = "admin".into();
    let tampered = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    assert!(matches!(k.validate(&tampered, NOW), Err(TokenError::BadSignature)));
    for garbage in ["", "a.b", "a.b.c", "....", &format!("{token}x")] {
        assert!(k.validate(garbage, NOW).is_err(), "{garbage}");
    }
}

#[test]
fn missing_claims_rejected() {
    let k = keys(1);
    let der = SigningKey::from_bytes(&[1; 32]).to_pkcs8_der().unwrap();
    let enc = EncodingKey::from_ed_der(der.as_bytes());
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(k.kid().to_owned());
    let no_sid = serde_json::json!({"sub": Uuid::new_v4(), "org": Uuid::new_v4(), "role": "admin",
        "iat": NOW, "exp": NOW + 60, "iss": ISS, "aud": AUD, "jti": Uuid::new_v4()});
    let token = jsonwebtoken::encode(&header, &no_sid, &enc).unwrap();
    assert!(matches!(k.validate(&token, NOW), Err(TokenError::Malformed)));
}

#[test]
fn responses_carrying_secrets_redact_them_in_debug() {
    use uuid::Uuid;
    let secret = "s3cr3t-value-that-must-not-print";
    let tokens = crate::auth::sessions::TokenResponse {
        access_token: secret.into(),
        refresh_token: secret.into(),
        token_type: "Bearer",
        expires_in: 600,
        session_id: Uuid::nil(),
        mfa_enrollment_required: false,
        password_change_required: false,
    };
    let outputs = [
        format!("{tokens:?}"),
        format!("{:?}", crate::auth::login::LoginOutcome::Tokens(tokens)),
        format!(
            "{:?}",
            crate::auth::login::LoginOutcome::MfaRequired {
                mfa_required: true,
                mfa_token: secret.into(),
                expires_in: 300
            }
        ),
        format!(
            "{:?}",
            crate::auth::mfa::Enrolment { secret_base32: secret.into(), otpauth_uri: format!("otpauth://{secret}") }
        ),
        format!("{:?}", crate::auth::mfa::RecoveryCodes { recovery_codes: vec![secret.into()] }),
        format!(
            "{:?}",
            crate::auth::users::CreatedUser {
                id: Uuid::nil(),
                email: "a@b.example".into(),
                role: "clinician",
                display_name: "A".into(),
                one_time_password: secret.into(),
                must_change_password: true,
            }
        ),
    ];
    for out in outputs {
        assert!(!out.contains(secret), "{out}");
        assert!(out.contains("redacted") || out.contains("count"), "{out}");
    }
}

#[test]
fn a_remembered_token_is_still_checked_against_the_clock_and_tampering() {
    let k = keys(1);
    let c = claims(&k);
    let token = k.issue(&c).unwrap();
    assert!(k.validate(&token, NOW).is_ok());
    assert_eq!(k.remembered(), 1, "verified once, remembered");
    assert_eq!(k.validate(&token, NOW).unwrap(), c, "the same claims from memory");
    assert!(matches!(k.validate(&token, c.exp + CLOCK_SKEW_SECS + 1), Err(TokenError::Expired)));
    assert!(matches!(k.validate(&token, NOW - 60), Err(TokenError::NotYetValid)));
    // Any other bytes are another token: verified afresh, and refused.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = "admin".into();
    let tampered = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    assert!(matches!(k.validate(&tampered, NOW), Err(TokenError::BadSignature)));
    assert!(k.validate(&format!("{token}x"), NOW).is_err());
    // Refusals are not remembered; another key's instance remembers nothing of this one's.
    assert_eq!(k.remembered(), 1);
    assert!(matches!(keys(2).validate(&token, NOW), Err(TokenError::UnknownKey)));
}

#[test]
fn remembered_tokens_are_bounded() {
    const N: usize = 50;
    let k = keys(1).remembering_at_most(N);
    let token = |role: &str, at: i64, ttl: i64| {
        k.issue(&k.claims(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), role, at, ttl)).unwrap()
    };
    // Full of short-lived tokens and one long-lived: past the short ones' expiry, they go first.
    let long = token("clinician", NOW, 3600);
    k.validate(&long, NOW).unwrap();
    for _ in 1..N {
        k.validate(&token("patient", NOW, 60), NOW).unwrap();
    }
    assert_eq!(k.remembered(), N);
    let later = NOW + 600;
    k.validate(&token("patient", later, 60), later).unwrap();
    assert_eq!(k.remembered(), 2, "the expired ones were dropped to make room, the live one kept");
    // Full of live ones: all forgotten, and verified afresh when they come back.
    for _ in 2..N {
        k.validate(&token("patient", later, 60), later).unwrap();
    }
    assert_eq!(k.remembered(), N);
    k.validate(&token("patient", later, 60), later).unwrap();
    assert_eq!(k.remembered(), 1);
    assert!(k.validate(&long, later).is_ok());
    assert_eq!(k.remembered(), 2);
}

#[test]
fn lifetimes_beyond_the_maximum_are_refused_even_once_remembered() {
    let k = keys(1).with_max_lifetime(600);
    let year = k.issue(&k.claims(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), "admin", NOW, 365 * 86_400)).unwrap();
    assert!(matches!(k.validate(&year, NOW), Err(TokenError::LifetimeTooLong)));
    assert!(matches!(k.validate(&year, NOW + 1), Err(TokenError::LifetimeTooLong)));
    assert!(k.validate(&k.issue(&claims(&k)).unwrap(), NOW).is_ok());
    // Without a bound (the library default) the same token verifies: the bound is the server's.
    assert!(keys(1).validate(&year, NOW).is_ok());
}
