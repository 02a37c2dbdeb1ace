//! Tests of `totp`: RFC 6238 vector, ±1 window, replay rejection, otpauth URI, and
//! recovery-code generation, normalization and keyed hashing.

use secrecy::ExposeSecret;

use super::totp::*;

/// RFC 6238 Appendix B SHA-1 secret.
fn rfc_secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890").unwrap()
}

#[test]
fn rfc6238_known_answer() {
    // T = 59 s → step 1 → 8-digit 94287082, so 6-digit 287082.
    let s = rfc_secret();
    assert_eq!(code_for_step(&s, step_at(59)).unwrap().as_str(), "287082");
    assert_eq!(verify(&s, "287082", 59, None), Some(1));
    // T = 1111111109 → 07081804 → 081804.
    assert_eq!(code_for_step(&s, step_at(1_111_111_109)).unwrap().as_str(), "081804");
}

#[test]
fn new_secret_is_160_bits_and_base32_round_trips() {
    let a = new_secret();
    assert_eq!(a.as_bytes().len(), 20);
    assert_ne!(a.as_bytes(), new_secret().as_bytes());
    let b32 = secret_base32(&a);
    assert_eq!(b32.expose_secret().len(), 32);
    let back = TotpSecret::from_base32(b32.expose_secret()).unwrap();
    assert_eq!(back.as_bytes(), a.as_bytes());
    assert!(TotpSecret::from_bytes(&[0u8; 15]).is_err());
    assert!(TotpSecret::from_base32("not base32!").is_err());
    assert_eq!(format!("{a:?}"), "TotpSecret([REDACTED])");
}

#[test]
fn otpauth_uri_has_issuer_account_and_secret() {
    let s = rfc_secret();
    let uri = otpauth_uri(&s, "alice@example.org").unwrap();
    let uri = uri.expose_secret();
    assert!(uri.starts_with("otpauth://totp/Custos:alice%40example.org?"), "{uri}");
    assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
    assert!(uri.contains("issuer=Custos"), "{uri}");
    assert!(!uri.contains("algorithm=") && !uri.contains("digits=") && !uri.contains("period="));
    assert!(otpauth_uri(&s, "odd:name@example.org").is_err());
}

#[test]
fn window_accepts_plus_minus_one_step_only() {
    let s = new_secret();
    let now = 1_750_000_015; // mid-step
    let cur = step_at(now);
    for delta in [-1, 0, 1] {
        let code = code_for_step(&s, cur + delta).unwrap();
        assert_eq!(verify(&s, &code, now, None), Some(cur + delta), "delta {delta}");
    }
    for delta in [-2, 2] {
        let code = code_for_step(&s, cur + delta).unwrap();
        // Skip the 1-in-a-million case where the far code equals a near one.
        let near: Vec<_> = (-1..=1).map(|d| code_for_step(&s, cur + d).unwrap()).collect();
        if !near.contains(&code) {
            assert_eq!(verify(&s, &code, now, None), None, "delta {delta}");
        }
    }
}

#[test]
fn replay_and_older_steps_rejected() {
    let s = new_secret();
    let now = 1_750_000_000;
    let cur = step_at(now);
    let code = code_for_step(&s, cur).unwrap();
    let accepted = verify(&s, &code, now, None).unwrap();
    assert_eq!(accepted, cur);
    // Same code again, even a few seconds later in the window: replay.
    assert_eq!(verify(&s, &code, now + 5, Some(accepted)), None);
    // The previous step's code is still in the window but not newer than the last accepted.
    let prev = code_for_step(&s, cur - 1).unwrap();
    if prev != code {
        assert_eq!(verify(&s, &prev, now, Some(accepted)), None);
    }
    // The next step is newer: accepted.
    let next = code_for_step(&s, cur + 1).unwrap();
    assert_eq!(verify(&s, &next, now + 30, Some(accepted)), Some(cur + 1));
}

#[test]
fn malformed_or_wrong_codes_rejected() {
    let s = rfc_secret();
    for bad in ["", "28708", "2870822", "28708a", "+28708", "２８７０８２", "287082\u{0}"] {
        assert_eq!(verify(&s, bad, 59, None), None, "{bad:?}");
    }
    assert_eq!(verify(&s, "000000", 59, None), None);
    assert_eq!(verify(&s, " 287 082 ", 59, None), Some(1));
    assert!(is_totp_format("123 456") && !is_totp_format("abcd-efgh-jkmn-pqrs"));
    // Negative times never panic.
    assert_eq!(verify(&s, "287082", -10, None), None);
}

#[test]
fn recovery_codes_are_unique_formatted_and_80_bits() {
    const { assert!(RECOVERY_CODE_BITS >= 64) };
    let codes = generate_recovery_codes(RECOVERY_CODE_COUNT);
    assert_eq!(codes.len(), 10);
    let mut seen = std::collections::HashSet::new();
    for c in &codes {
        let c = c.expose_secret();
        assert_eq!(c.len(), 19, "{c}");
        let groups: Vec<&str> = c.split('-').collect();
        assert_eq!(groups.len(), 4);
        assert!(groups.iter().all(|g| g.len() == 4));
        assert!(c.chars().all(|ch| ch == '-' || "0123456789abcdefghjkmnpqrstvwxyz".contains(ch)));
        assert!(seen.insert(c.to_owned()));
    }
    // 2,000 more: still no collision, and every one of the 32 symbols shows up.
    let many = generate_recovery_codes(2000);
    let all: std::collections::HashSet<_> = many.iter().map(|c| c.expose_secret().to_owned()).collect();
    assert_eq!(all.len(), 2000);
    let symbols: std::collections::HashSet<char> = all.iter().flat_map(|c| c.chars()).filter(|c| *c != '-').collect();
    assert_eq!(symbols.len(), 32);
}

#[test]
fn recovery_code_input_is_normalized() {
    let key = [7u8; 32];
    let code = "0a1b-2c3d-4e5f-6g7h";
    let h = hash_recovery_code(&key, code);
    for typed in [
        "0A1B-2C3D-4E5F-6G7H",
        "0a1b2c3d4e5f6g7h",
        " 0a1b 2c3d\t4e5f 6g7h ",
        "Oa1b-2c3d-4e5f-6g7h",
        "0aIb-2c3d-4e5f-6g7h",
        "0aLb2c3d4e5f6g7h",
    ] {
        assert_eq!(hash_recovery_code(&key, typed), h, "{typed}");
    }
    assert_eq!(normalize_recovery_code("0A1B-2C3D-4E5F-6G7H").unwrap().as_str(), "0a1b2c3d4e5f6g7h");
    assert!(normalize_recovery_code("0a1b-2c3d-4e5f").is_none());
    assert!(normalize_recovery_code("0a1b-2c3d-4e5f-6g7u").is_none());
    assert_ne!(hash_recovery_code(&key, "0a1b-2c3d-4e5f-6g7j"), h);
    assert_ne!(hash_recovery_code(&[8u8; 32], code), h);
}

#[test]
fn recovery_hash_is_hmac_sha256_of_normalized_code() {
    use hmac::{Hmac, KeyInit, Mac};
    let key = [0x42u8; 32];
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(b"0a1b2c3d4e5f6g7h");
    let expected: [u8; 32] = mac.finalize().into_bytes().into();
    assert_eq!(hash_recovery_code(&key, "0A1B-2C3D-4E5F-6G7H"), expected);
}

#[test]
fn generated_codes_round_trip_through_hashing() {
    let key = [1u8; 32];
    let codes = generate_recovery_codes(3);
    let stored: Vec<[u8; 32]> = codes.iter().map(|c| hash_recovery_code(&key, c.expose_secret())).collect();
    let typed = codes[1].expose_secret().to_uppercase().replace('-', " ");
    let h = hash_recovery_code(&key, &typed);
    assert_eq!(stored.iter().filter(|s| super::tokens::ct_eq(*s, &h)).count(), 1);
    assert!(format!("{:?}", codes[0]).contains("REDACTED"));
}
