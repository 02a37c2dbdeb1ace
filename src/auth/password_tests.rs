//! Tests of `password`: policy rules, NFKC, Argon2id hashing and re-hash signal, legacy
//! bcrypt verification and the dummy verification.

use secrecy::SecretString;

use super::password::*;

fn s(p: &str) -> SecretString {
    SecretString::from(p)
}

fn codes(r: Result<(), Vec<PolicyViolation>>) -> Vec<&'static str> {
    r.err().unwrap_or_default().iter().map(PolicyViolation::code).collect()
}

const STRONG_15: &str = "tundra-Quill-87z"; // 16 chars, unrelated words + digits
const STRONG_12: &str = "vX9#kq2!Lm7$"; // 12 random chars

#[test]
fn patient_needs_15_characters() {
    let p = PasswordPolicy::MFA_OPTIONAL;
    assert_eq!(p, PasswordPolicy::for_role(false));
    assert_eq!(codes(p.check(&s(STRONG_12), "alice", &[])), vec!["password_too_short"]);
    assert_eq!(p.check(&s(STRONG_15), "alice", &[]), Ok(()));
    let v = p.check(&s("x7!Qz"), "alice", &[]).unwrap_err();
    assert!(v.contains(&PolicyViolation::TooShort { min: 15 }));
}

#[test]
fn staff_needs_12_characters() {
    let p = PasswordPolicy::for_role(true);
    assert_eq!(p.min_len, 12);
    assert_eq!(p.check(&s(STRONG_12), "bob", &[]), Ok(()));
    let v = p.check(&s("vX9#kq2!Lm7"), "bob", &[]).unwrap_err();
    assert!(v.contains(&PolicyViolation::TooShort { min: 12 }));
}

#[test]
fn longer_than_128_rejected_and_128_accepted() {
    let p = PasswordPolicy::MFA_MANDATORY;
    let base = "Correct-Horse-Battery-Staple-Zebra-Quartz-";
    let exact: String = base.chars().cycle().take(128).collect();
    assert_eq!(p.check(&s(&exact), "carol", &[]), Ok(()));
    let long: String = base.chars().cycle().take(129).collect();
    assert_eq!(codes(p.check(&s(&long), "carol", &[])), vec!["password_too_long"]);
}

#[test]
fn weak_passwords_rejected() {
    let p = PasswordPolicy::MFA_MANDATORY;
    for weak in ["passwordpassword", "1234567890123456", "qwertyuiopasdfgh", "aaaaaaaaaaaaaaaa"] {
        let v = p.check(&s(weak), "dave", &[]).unwrap_err();
        assert!(v.iter().any(|x| x.code() == "password_too_weak"), "{weak} accepted");
    }
}

#[test]
fn user_inputs_count_as_guessable() {
    let p = PasswordPolicy::MFA_MANDATORY;
    let pw = "mercyhospital2024";
    let v = p.check(&s(pw), "erin", &["Mercy Hospital", "mercyhospital"]).unwrap_err();
    assert!(v.iter().any(|x| x.code() == "password_too_weak"));
}

#[test]
fn email_local_part_rejected_case_insensitively() {
    let p = PasswordPolicy::MFA_OPTIONAL;
    let pw = "Tundra-J.Smith-Quill-87z";
    let v = p.check(&s(pw), "j.smith", &[]).unwrap_err();
    assert_eq!(v, vec![PolicyViolation::ContainsEmail]);
    // "+tag" addresses: the base part counts too.
    let v = p.check(&s("Tundra-jsmith-Quill-87z"), "JSmith+custos", &[]).unwrap_err();
    assert_eq!(v, vec![PolicyViolation::ContainsEmail]);
    // Local parts under 3 characters are not checked.
    assert_eq!(p.check(&s("tundra-Quill-87z-jo"), "jo", &[]), Ok(()));
}

#[test]
fn messages_never_echo_the_password_and_codes_are_stable() {
    let pw = "passwordpassword";
    let v = PasswordPolicy::MFA_OPTIONAL.check(&s(pw), "password", &[]).unwrap_err();
    for x in &v {
        assert!(!x.message().to_lowercase().contains(pw));
        assert!(!x.to_string().is_empty());
    }
    let json = serde_json::to_value(PolicyViolation::TooShort { min: 15 }).unwrap();
    assert_eq!(json["code"], "password_too_short");
    assert_eq!(json["message"], "Password must be at least 15 characters long.");
    let all = [
        PolicyViolation::TooShort { min: 1 },
        PolicyViolation::TooLong { max: 1 },
        PolicyViolation::TooWeak { hint: None },
        PolicyViolation::ContainsEmail,
    ];
    let got: Vec<_> = all.iter().map(PolicyViolation::code).collect();
    assert_eq!(got, ["password_too_short", "password_too_long", "password_too_weak", "password_contains_email"]);
}

#[test]
fn length_is_counted_in_code_points_after_nfkc() {
    let p = PasswordPolicy { min_len: 15, max_len: 16 };
    // 15 code points when composed ("é" = U+00E9), 16 if counted decomposed: NFKC composes.
    let composed = "zébra-quill-87#";
    let decomposed = "ze\u{301}bra-quill-87#";
    assert_eq!(composed.chars().count(), 15);
    assert_eq!(decomposed.chars().count(), 16);
    assert_eq!(p.check(&s(decomposed), "x", &[]), p.check(&s(composed), "x", &[]));
    // Non-ASCII is fine: 15 CJK/emoji code points pass the length rule.
    let v = PasswordPolicy::MFA_OPTIONAL.check(&s("长城🐉长城🐉天空🌧海洋🌊山川🏔"), "x", &[]);
    assert!(!codes(v).contains(&"password_too_short"));
}

#[test]
fn hash_is_argon2id_phc_and_verifies() {
    let pw = s("tundra-Quill-87z");
    let phc = hash_password(&pw).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert_ne!(phc, hash_password(&pw).unwrap(), "salt must differ");
    assert_eq!(verify_password(&pw, &phc).unwrap(), Verified { needs_rehash: false });
    assert!(matches!(verify_password(&s("tundra-quill-87z"), &phc), Err(PasswordError::Mismatch)));
}

#[test]
fn composed_and_decomposed_passwords_are_the_same_password() {
    let composed = s("Crème brûlée à l'été");
    let decomposed = s("Cre\u{300}me bru\u{302}le\u{301}e a\u{300} l'e\u{301}te\u{301}");
    let phc = hash_password(&composed).unwrap();
    assert!(verify_password(&decomposed, &phc).is_ok());
    // Compatibility forms too: full-width letters and the "ﬁ" ligature.
    let phc = hash_password(&s("ＡＢＣ-ﬁsh-tank")).unwrap();
    assert!(verify_password(&s("ABC-fish-tank"), &phc).is_ok());
}

#[test]
fn params_below_current_need_rehash() {
    let pw = s("tundra-Quill-87z");
    let old = Argon2Params::unchecked(8192, 1, 1).hash_password(&pw).unwrap();
    assert_eq!(verify_password(&pw, &old).unwrap(), Verified { needs_rehash: true });

    let current = hash_password(&pw).unwrap();
    let raised = Argon2Params::new(32_768, 2, 1).unwrap();
    assert_eq!(raised.verify_password(&pw, &current).unwrap(), Verified { needs_rehash: true });
    let stronger = raised.hash_password(&pw).unwrap();
    assert!(stronger.contains("m=32768,t=2,p=1"));
    // A hash stronger than current is fine as is.
    assert_eq!(verify_password(&pw, &stronger).unwrap(), Verified { needs_rehash: false });
}

#[test]
fn params_cannot_go_below_owasp_minimum() {
    assert!(Argon2Params::new(19_455, 2, 1).is_err());
    assert!(Argon2Params::new(19_456, 1, 1).is_err());
    assert!(Argon2Params::new(19_456, 2, 0).is_err());
    let d = Argon2Params::default();
    assert_eq!((d.m_cost_kib(), d.t_cost(), d.p_cost()), (19_456, 2, 1));
    assert_eq!(Argon2Params::new(19_456, 2, 1).unwrap(), d);
}

#[test]
fn argon2i_hash_verifies_and_needs_rehash() {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
    let params = Params::new(19_456, 2, 1, None).unwrap();
    let a = Argon2::new(Algorithm::Argon2i, Version::V0x13, params);
    let phc = a.hash_password(b"tundra-Quill-87z").unwrap().to_string();
    let v = verify_password(&s("tundra-Quill-87z"), &phc).unwrap();
    assert!(v.needs_rehash);
}

#[test]
fn legacy_bcrypt_verifies_and_needs_rehash() {
    let pw = "legacy-Pa55word!";
    let b2b = bcrypt::hash(pw, 4).unwrap();
    assert!(b2b.starts_with("$2b$04$"));
    assert_eq!(verify_password(&s(pw), &b2b).unwrap(), Verified { needs_rehash: true });
    assert!(matches!(verify_password(&s("legacy-pa55word!"), &b2b), Err(PasswordError::Mismatch)));

    let parts = bcrypt::hash_with_result(pw, 4).unwrap();
    for version in [bcrypt::Version::TwoA, bcrypt::Version::TwoY] {
        let h = parts.format_for_version(version);
        assert!(h.starts_with("$2a$") || h.starts_with("$2y$"));
        assert!(verify_password(&s(pw), &h).unwrap().needs_rehash);
    }
}

#[test]
fn legacy_bcrypt_of_nfkc_form_also_verifies() {
    let nfkc = "ABC-fish-tank-legacy";
    let h = bcrypt::hash(nfkc, 4).unwrap();
    assert!(verify_password(&s("ＡＢＣ-ﬁsh-tank-legacy"), &h).is_ok());
}

#[test]
fn malformed_and_foreign_hashes_are_errors() {
    let pw = s("tundra-Quill-87z");
    assert!(matches!(verify_password(&pw, "not a hash"), Err(PasswordError::MalformedHash)));
    assert!(matches!(verify_password(&pw, ""), Err(PasswordError::MalformedHash)));
    assert!(matches!(verify_password(&pw, "$2b$04$short"), Err(PasswordError::MalformedHash)));
    let pbkdf2 = "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    assert!(matches!(verify_password(&pw, pbkdf2), Err(PasswordError::UnsupportedScheme)));
    let huge = s(&"a".repeat(5000));
    assert!(matches!(verify_password(&huge, "x"), Err(PasswordError::Mismatch)));
}

#[test]
fn dummy_verify_fails_and_runs_the_same_argon2_work() {
    // Equal cost comes from construction (dummy_verify runs Argon2 with the current
    // parameters, as a real verification does); timing is measured in bench/, not asserted in
    // a test on a shared machine. Here: it never succeeds, for any password.
    for pw in ["tundra-Quill-87z", "", "wrong-password-1"] {
        assert!(matches!(dummy_verify(&s(pw)), Err(PasswordError::Mismatch)));
    }
    let strong = Argon2Params::new(19456 * 2, 3, 1).unwrap();
    assert!(matches!(strong.dummy_verify(&s("x")), Err(PasswordError::Mismatch)));
}

#[test]
fn errors_and_secrets_do_not_leak_in_debug() {
    let pw = s("tundra-Quill-87z");
    assert!(!format!("{pw:?}").contains("tundra"));
    let e = verify_password(&pw, "$2b$04$short").unwrap_err();
    assert!(!format!("{e:?} {e}").contains("tundra"));
}
