//! Tests of the crypto module: key hierarchy, sealing/opening and its bindings, blind
//! indexes, and the redaction of key material in `Debug`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::keys::hmac_with_key;
use super::*;

fn kek() -> Kek {
    Kek::from_bytes([7u8; 32])
}

fn v(n: i64) -> KeyVersion {
    KeyVersion::new(n).unwrap()
}

fn keyring() -> Keyring {
    Keyring::new(v(1), &Dek::generate())
}

const SECRET: &[u8] = b"Jane Q. Public, DOB 1970-01-01";

#[test]
fn round_trip_bytes_and_text() {
    let ring = keyring();
    let row = Uuid::now_v7();
    let sealed = ring.seal("patients", "given_name", row, SECRET).unwrap();
    assert_eq!(sealed.len(), SECRET.len() + SEALED_OVERHEAD);
    assert_eq!(&sealed[..4], &1u32.to_be_bytes());
    let opened = ring.open("patients", "given_name", row, &sealed).unwrap();
    assert_eq!(opened.as_slice(), SECRET);

    let sealed = ring.seal_str("messages", "body", row, "héllo ✓").unwrap();
    let text = ring.open_string("messages", "body", row, &sealed).unwrap();
    assert_eq!(text.as_str(), "héllo ✓");

    let empty = ring.seal("patients", "address", row, b"").unwrap();
    assert_eq!(empty.len(), MIN_SEALED_LEN);
    assert!(ring.open("patients", "address", row, &empty).unwrap().is_empty());
}

#[test]
fn ciphertext_is_bound_to_table_column_row() {
    let ring = keyring();
    let row = Uuid::new_v4();
    let sealed = ring.seal("patients", "given_name", row, SECRET).unwrap();
    let cases = [
        ("patients", "family_name", row),
        ("allergies", "given_name", row),
        ("patients", "given_name", Uuid::new_v4()),
    ];
    for (table, column, row_id) in cases {
        assert_eq!(ring.open(table, column, row_id, &sealed).unwrap_err(), CryptoError::Integrity);
    }
}

#[test]
fn length_prefixes_separate_table_and_column() {
    let ring = keyring();
    let row = Uuid::new_v4();
    let sealed = ring.seal("ab", "c", row, SECRET).unwrap();
    assert_eq!(ring.open("a", "bc", row, &sealed).unwrap_err(), CryptoError::Integrity);
}

#[test]
fn relabelled_version_fails() {
    let mut ring = keyring();
    ring.insert(v(2), &Dek::generate());
    let row = Uuid::new_v4();
    let mut sealed = ring.seal("patients", "phone", row, SECRET).unwrap();
    sealed[..4].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(ring.open("patients", "phone", row, &sealed).unwrap_err(), CryptoError::Integrity);
    sealed[..4].copy_from_slice(&9u32.to_be_bytes());
    assert_eq!(ring.open("patients", "phone", row, &sealed).unwrap_err(), CryptoError::UnknownKeyVersion(9));
    sealed[..4].copy_from_slice(&0u32.to_be_bytes());
    assert_eq!(ring.open("patients", "phone", row, &sealed).unwrap_err(), CryptoError::Malformed);
}

#[test]
fn tampering_with_any_byte_fails() {
    let ring = keyring();
    let row = Uuid::new_v4();
    let sealed = ring.seal("patients", "email", row, SECRET).unwrap();
    for i in 0..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = sealed.clone();
            bad[i] ^= bit;
            assert!(ring.open("patients", "email", row, &bad).is_err(), "byte {i}");
        }
    }
    for len in 0..sealed.len() {
        assert!(ring.open("patients", "email", row, &sealed[..len]).is_err());
    }
    assert_eq!(ring.open("patients", "email", row, &[0u8; 5]).unwrap_err(), CryptoError::Malformed);
}

#[test]
fn two_seals_differ() {
    let ring = keyring();
    let row = Uuid::new_v4();
    let a = ring.seal("patients", "email", row, SECRET).unwrap();
    let b = ring.seal("patients", "email", row, SECRET).unwrap();
    assert_ne!(a, b);
    assert_ne!(a[4..16], b[4..16], "nonces must differ");
}

#[test]
fn non_utf8_is_reported_not_served() {
    let ring = keyring();
    let row = Uuid::new_v4();
    let sealed = ring.seal("t", "c", row, &[0xff, 0xfe]).unwrap();
    assert_eq!(ring.open_string("t", "c", row, &sealed).unwrap_err(), CryptoError::NotUtf8);
}

#[test]
fn rotation_and_rewrap() {
    let kek = kek();
    let dek1 = Dek::generate();
    let wrapped1 = kek.wrap_dek(v(1), &dek1).unwrap();
    let old = Keyring::from_wrapped(&kek, [(v(1), wrapped1.as_slice())]).unwrap();
    let row = Uuid::new_v4();
    let sealed_v1 = old.seal("patients", "address", row, SECRET).unwrap();

    let dek2 = Dek::generate();
    let wrapped2 = kek.wrap_dek(v(2), &dek2).unwrap();
    let ring = Keyring::from_wrapped(&kek, [(v(2), wrapped2.as_slice()), (v(1), wrapped1.as_slice())]).unwrap();
    assert_eq!(ring.current_version(), v(2));
    assert_eq!(ring.versions().collect::<Vec<_>>(), vec![v(1), v(2)]);
    // Old values stay readable before rewrap.
    assert_eq!(ring.open("patients", "address", row, &sealed_v1).unwrap().as_slice(), SECRET);
    let rewrapped = ring.rewrap("patients", "address", row, &sealed_v1).unwrap().unwrap();
    assert_eq!(Keyring::sealed_version(&rewrapped).unwrap(), v(2));
    assert!(ring.rewrap("patients", "address", row, &rewrapped).unwrap().is_none());
    assert_eq!(ring.open("patients", "address", row, &rewrapped).unwrap().as_slice(), SECRET);
    // Rewrap refuses to launder a value moved from another row.
    assert_eq!(ring.rewrap("patients", "address", Uuid::new_v4(), &sealed_v1).unwrap_err(), CryptoError::Integrity);
}

#[test]
fn keyring_current_version_rules() {
    let mut ring = keyring();
    assert_eq!(ring.set_current(v(3)).unwrap_err(), CryptoError::NoCurrentKey);
    ring.insert(v(3), &Dek::generate());
    ring.set_current(v(3)).unwrap();
    assert!(ring.contains(v(1)));
    let sealed = ring.seal("t", "c", Uuid::nil(), b"x").unwrap();
    assert_eq!(Keyring::sealed_version(&sealed).unwrap(), v(3));
    let none: [(KeyVersion, &[u8]); 0] = [];
    assert_eq!(Keyring::from_wrapped(&kek(), none).unwrap_err(), CryptoError::NoCurrentKey);
}

#[test]
fn wrong_kek_is_detected_by_check_value() {
    let right = kek();
    let stored = right.check_value();
    right.verify_check_value(&stored).unwrap();
    let wrong = Kek::from_bytes([8u8; 32]);
    assert_eq!(wrong.verify_check_value(&stored).unwrap_err(), CryptoError::WrongKek);
    assert_eq!(right.verify_check_value(&stored[..16]).unwrap_err(), CryptoError::WrongKek);
    assert_eq!(stored.len(), KEK_CHECK_VALUE_LEN);
    // The message is what an operator sees at start-up.
    assert!(CryptoError::WrongKek.to_string().contains("wrong KEK"));
}

#[test]
fn unwrap_with_wrong_kek_or_version_fails() {
    let kek = kek();
    let dek = Dek::from_bytes([9u8; 32]);
    let wrapped = kek.wrap_dek(v(4), &dek).unwrap();
    assert_eq!(wrapped.len(), WRAPPED_DEK_LEN);
    assert!(!wrapped.windows(32).any(|w| w == [9u8; 32]));
    let back = kek.unwrap_dek(v(4), &wrapped).unwrap();
    assert_eq!(*back.key, [9u8; 32]);

    let wrong = Kek::from_bytes([1u8; 32]);
    assert_eq!(wrong.unwrap_dek(v(4), &wrapped).unwrap_err(), CryptoError::DekUnwrap(4));
    assert_eq!(kek.unwrap_dek(v(5), &wrapped).unwrap_err(), CryptoError::DekUnwrap(5));
    assert!(kek.unwrap_dek(v(4), &wrapped[1..]).is_err());
    assert!(Keyring::from_wrapped(&wrong, [(v(4), wrapped.as_slice())]).is_err());
}

#[test]
fn kek_encodings() {
    let k = Kek::generate();
    let encoded = k.to_base64();
    let back = Kek::from_base64(&format!("  {}\n", encoded.as_str())).unwrap();
    assert_eq!(back.check_value(), k.check_value());
    let unpadded = encoded.trim_end_matches('=').to_string();
    assert_eq!(Kek::from_base64(&unpadded).unwrap().check_value(), k.check_value());
    assert_eq!(Kek::from_base64("not base64!").unwrap_err(), CryptoError::KekEncoding);
    assert_eq!(Kek::from_base64("AAAA").unwrap_err(), CryptoError::InvalidKeyLength { expected: 32, actual: 3 });
    assert!(Kek::from_slice(&[0u8; 31]).is_err());
}

#[test]
fn key_versions() {
    assert_eq!(KeyVersion::FIRST.get(), 1);
    assert!(KeyVersion::new(0).is_err());
    assert!(KeyVersion::new(-1).is_err());
    assert!(KeyVersion::new(i64::from(i32::MAX) + 1).is_err());
    let max = KeyVersion::try_from(i32::MAX).unwrap();
    assert_eq!(max.get(), 2_147_483_647);
    assert!(max.next().is_err());
    assert_eq!(v(1).next().unwrap(), v(2));
    assert_eq!(KeyVersion::try_from(7u32).unwrap().as_i32(), 7);
    assert_eq!(v(12).to_string(), "12");
}

#[test]
fn subkeys_are_separated() {
    let k = kek();
    let a = k.derive_subkey("refresh-token-hash/v1");
    let b = k.derive_subkey("recovery-code-hash/v1");
    assert_ne!(*a, *b);
    assert_eq!(*a, *k.derive_subkey("refresh-token-hash/v1"));
    assert_ne!(*a, *Kek::from_bytes([8u8; 32]).derive_subkey("refresh-token-hash/v1"));
    // No application label reaches an internal key (e.g. the public check value).
    assert_ne!(*k.derive_subkey("kek-check/v1"), k.check_value());
    assert_ne!(*k.derive_subkey("../internal/kek-check/v1"), k.check_value());
}

#[test]
fn hkdf_expand_matches_reference() {
    // HKDF-Expand(PRK, info, 32) = HMAC(PRK, info ‖ 0x01): recompute with plain hmac.
    let mut mac = Hmac::<Sha256>::new_from_slice(&[7u8; 32]).unwrap();
    mac.update(b"custos/app/label");
    mac.update(&[1]);
    let expected: [u8; 32] = mac.finalize().into_bytes().into();
    assert_eq!(*kek().derive_subkey("label"), expected);
    // The zero-padded 64-byte keying equals keying with the 32 bytes directly.
    let mut a = hmac_with_key(&[3u8; 32]);
    let mut b = Hmac::<Sha256>::new_from_slice(&[3u8; 32]).unwrap();
    a.update(b"x");
    b.update(b"x");
    assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes());
}

#[test]
fn blind_index_properties() {
    let key = BlindIndexKey::derive(&kek());
    let mrn = key.index(BlindIndexKind::Mrn, "MRN-001");
    assert_eq!(mrn, key.blind_index("mrn", "MRN-001"));
    assert_ne!(mrn, key.blind_index("email", "MRN-001"));
    assert_ne!(mrn, key.blind_index("mrn", "MRN-002"));
    // Length prefixes: ("mr", "nX") is not ("mrn", "X").
    assert_ne!(key.blind_index("mr", "nX"), key.blind_index("mrn", "X"));
    let org_a = Uuid::new_v4();
    let org_b = Uuid::new_v4();
    let scoped = key.blind_index_scoped("mrn", org_a, "MRN-001");
    assert_ne!(scoped, mrn);
    assert_ne!(scoped, key.blind_index_scoped("mrn", org_b, "MRN-001"));
    assert_eq!(scoped, key.blind_index_scoped("mrn", org_a, "MRN-001"));
    let other = BlindIndexKey::derive(&Kek::from_bytes([8u8; 32]));
    assert_ne!(mrn, other.index(BlindIndexKind::Mrn, "MRN-001"));
    // The index key is not the KEK's app sub-key of the same name.
    assert_ne!(
        mrn,
        BlindIndexKey::derive(&Kek::from_bytes(*kek().derive_subkey("blind-index/v1")))
            .index(BlindIndexKind::Mrn, "MRN-001")
    );
}

#[test]
fn debug_never_shows_key_bytes() {
    let raw = [0xABu8; 32];
    let kek = Kek::from_bytes(raw);
    let dek = Dek::from_bytes(raw);
    let ring = Keyring::new(v(1), &dek);
    let bik = BlindIndexKey::derive(&kek);
    let rendered = format!("{kek:?} {dek:?} {ring:?} {bik:?} {kek:#?}");
    for needle in ["171", "ab", "AB", "0xab", "[171"] {
        assert!(!rendered.contains(needle), "{rendered}");
    }
    assert!(rendered.contains("redacted"));
}

#[test]
fn key_holders_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Kek>();
    assert_send_sync::<Keyring>();
    assert_send_sync::<BlindIndexKey>();
    assert_send_sync::<CryptoError>();
}
