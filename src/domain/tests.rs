//! Example-based tests of the domain parsers: accepted and refused inputs, normalization,
//! serde behaviour, and that errors and `Debug` never reveal the input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use chrono::NaiveDate;

use super::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn rule<T>(r: Result<T, DomainError>) -> Rule {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.rule().clone(),
    }
}

#[test]
fn email() {
    let e = Email::parse("  Jane.Doe+tag@Example.ORG ").unwrap();
    assert_eq!(e.as_str(), "jane.doe+tag@example.org");
    assert_eq!(e.as_entered(), "Jane.Doe+tag@Example.ORG");
    assert_eq!(e.domain(), "example.org");
    assert_eq!(e, Email::parse("jane.doe+tag@example.org").unwrap());
    for ok in ["a@b.co", "x_y@sub.domain-1.example", "o'brien@example.ie"] {
        assert!(Email::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "plain",
        "@x.org",
        "a@",
        "a@b",
        "a@@b.org",
        "a b@c.org",
        ".a@b.org",
        "a.@b.org",
        "a..b@c.org",
        "a@-b.org",
        "a@b-.org",
        "a@b..org",
        "a@1.2.3.4",
        "jö@example.org",
        "\"q\"@example.org",
    ] {
        assert!(matches!(rule(Email::parse(bad)), Rule::Format { .. }), "{bad}");
    }
    assert_eq!(rule(Email::parse("   ")), Rule::Empty);
    let long = format!("{}@example.org", "a".repeat(250));
    assert_eq!(rule(Email::parse(&long)), Rule::TooLong { max: 254 });
    let long_local = format!("{}@example.org", "a".repeat(65));
    assert!(Email::parse(&long_local).is_err());
}

#[test]
fn mrn() {
    assert_eq!(Mrn::parse(" mrn-00a1 ").unwrap().as_str(), "MRN-00A1");
    assert!(Mrn::parse(&"9".repeat(32)).is_ok());
    assert_eq!(rule(Mrn::parse(&"9".repeat(33))), Rule::TooLong { max: 32 });
    assert_eq!(rule(Mrn::parse("")), Rule::Empty);
    for bad in ["MRN 1", "MRN_1", "MRN/1", "MRNé"] {
        assert!(matches!(rule(Mrn::parse(bad)), Rule::Format { .. }), "{bad}");
    }
}

#[test]
fn icd10() {
    for (input, canonical) in [
        ("E11.9", "E11.9"),
        ("I10", "I10"),
        ("S52.521A", "S52.521A"),
        ("Z79.4", "Z79.4"),
        ("e119", "E11.9"),
        (" s52521a ", "S52.521A"),
        ("T36.0X1A", "T36.0X1A"),
        ("C4A.0", "C4A.0"),
        ("U07.1", "U07.1"),
    ] {
        let code = Icd10Code::parse(input).unwrap();
        assert_eq!(code.as_str(), canonical, "{input}");
    }
    assert_eq!(Icd10Code::parse("E11.9").unwrap().category(), "E11");
    for bad in [
        "E1",
        "11.9",
        "EE1.9",
        "E11.",
        "E11.12345",
        "E11123456",
        "E1.19",
        "E11..9",
        "E11.9.1",
        "E11-9",
        "É11.9",
        ".E119",
    ] {
        assert!(Icd10Code::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(rule(Icd10Code::parse(" ")), Rule::Empty);
}

#[test]
fn person_name() {
    assert_eq!(PersonName::parse("  Zoë O'Brien-Łukasz ").unwrap().as_str(), "Zoë O'Brien-Łukasz");
    assert!(PersonName::parse("李小龍").is_ok());
    assert!(PersonName::parse(&"é".repeat(200)).is_ok());
    assert_eq!(rule(PersonName::parse(&"é".repeat(201))), Rule::TooLong { max: 200 });
    assert_eq!(rule(PersonName::parse(" \t ")), Rule::Empty);
    for bad in ["Ann\u{0}", "Ann\nBob", "Ann\u{7f}", "Ann\u{202E}nhoJ"] {
        assert_eq!(rule(PersonName::parse(bad)), Rule::ControlCharacter, "{bad:?}");
    }
}

#[test]
fn birth_date() {
    let today = date(2026, 3, 15);
    let b = BirthDate::parse_as_of("1970-01-01", today).unwrap();
    assert_eq!(b.date(), date(1970, 1, 1));
    assert_eq!(b.to_iso_string(), "1970-01-01");
    assert!(BirthDate::parse_as_of("2026-03-15", today).is_ok());
    assert!(BirthDate::parse_as_of("1900-01-01", today).is_ok());
    assert_eq!(rule(BirthDate::parse_as_of("2026-03-16", today)), Rule::InFuture);
    assert_eq!(rule(BirthDate::parse_as_of("1899-12-31", today)), Rule::TooEarly { min: "1900-01-01" });
    for bad in ["2020-1-05", "20-01-05", "2020/01/05", "2023-02-29", "2024-13-01", "+2020-01-01", "2020-01-05T00:00"] {
        assert!(matches!(rule(BirthDate::parse_as_of(bad, today)), Rule::Format { .. }), "{bad}");
    }
    assert!(BirthDate::parse_as_of("2024-02-29", today).is_ok());
    assert!(BirthDate::parse("2000-06-30").is_ok());
    assert_eq!(rule(BirthDate::parse("9999-01-01")), Rule::InFuture);
    assert_eq!(parse_date("onset", "2025-07-04").unwrap(), date(2025, 7, 4));
    assert_eq!(parse_date("onset", "x").unwrap_err().field(), "onset");
}

#[test]
fn enums_use_postgres_labels() {
    assert_eq!(Severity::parse("Life_Threatening").unwrap(), Severity::LifeThreatening);
    assert_eq!(serde_json::to_string(&Severity::LifeThreatening).unwrap(), "\"life_threatening\"");
    assert_eq!(Sex::LABELS, ["female", "male", "other", "unknown"]);
    assert_eq!(BloodType::parse("AB-").unwrap(), BloodType::AbNeg);
    assert_eq!(BloodType::ABO_LABELS_FOR_TEST, BloodType::LABELS);
    assert_eq!(MedicationRoute::parse("SubQ").unwrap().as_str(), "subcutaneous");
    assert_eq!(MedicationRoute::ALL.len(), 13);
    assert_eq!(DoseUnit::parse("ML").unwrap().as_str(), "mL");
    assert_eq!(DoseUnit::parse("µg").unwrap(), DoseUnit::Mcg);
    let err = Sex::parse("fmale").unwrap_err();
    assert_eq!(err.to_string(), "sex: must be one of: female, male, other, unknown");
    assert_eq!(err.code(), "not_allowed");
    for s in Severity::ALL {
        assert_eq!(Severity::parse(s.as_str()).unwrap(), *s);
        let json = serde_json::to_string(s).unwrap();
        assert_eq!(serde_json::from_str::<Severity>(&json).unwrap(), *s);
    }
}

impl BloodType {
    const ABO_LABELS_FOR_TEST: &'static [&'static str] =
        &["a_pos", "a_neg", "b_pos", "b_neg", "ab_pos", "ab_neg", "o_pos", "o_neg", "unknown"];
}

#[test]
fn numbers() {
    assert_eq!(SymptomSeverity::parse(" 7 ").unwrap().get(), 7);
    assert!(SymptomSeverity::new(0).is_err() && SymptomSeverity::new(11).is_err());
    assert_eq!(Quantity::new(10_000).unwrap().get(), 10_000);
    assert_eq!(rule(Quantity::new(0)), Rule::OutOfRange { range: "greater than 0 and at most 10000" });
    assert!(Quantity::new(-5).is_err() && Quantity::new(i64::MAX).is_err());
    assert!(Refills::new(0).is_ok() && Refills::new(11).is_ok() && Refills::new(12).is_err());
    assert!(matches!(rule(Refills::parse("two")), Rule::Format { .. }));
    assert!(HeightCm::new(20.0).is_ok() && HeightCm::new(19.9).is_err());
    assert!(HeightCm::parse("172.5").is_ok());
    assert!(HeightCm::new(f64::NAN).is_err());
    assert!(matches!(rule(WeightKg::parse("inf")), Rule::Format { .. }));
    assert!(WeightKg::new(0.2).is_ok() && WeightKg::new(0.19).is_err() && WeightKg::new(700.1).is_err());
    let q: Quantity = serde_json::from_str("30").unwrap();
    assert_eq!(serde_json::to_string(&q).unwrap(), "30");
    assert!(serde_json::from_str::<Refills>("12").is_err());
    let w: WeightKg = serde_json::from_str("70.5").unwrap();
    assert_eq!(w.get(), 70.5);
}

#[test]
fn dosage() {
    let d = Dosage::parse("500 mg").unwrap();
    assert_eq!((d.value(), d.unit()), (500.0, DoseUnit::Mg));
    assert_eq!(d.to_string(), "500 mg");
    assert_eq!(Dosage::parse("2.5mL").unwrap().unit(), DoseUnit::Ml);
    assert_eq!(Dosage::parse("1 tablets").unwrap().unit(), DoseUnit::Tablet);
    assert!(Dosage::parse("0 mg").is_err());
    assert!(Dosage::parse("mg").is_err());
    assert!(Dosage::parse("5 teaspoons").is_err());
    assert!(Dosage::parse("1.2.3 mg").is_err());
    assert!(Dosage::new(-1.0, DoseUnit::G).is_err() && Dosage::new(f64::INFINITY, DoseUnit::G).is_err());
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(json, r#"{"value":500.0,"unit":"mg"}"#);
    assert_eq!(serde_json::from_str::<Dosage>(&json).unwrap(), d);
    assert!(serde_json::from_str::<Dosage>(r#"{"value":0,"unit":"mg"}"#).is_err());
}

/// Values a numeric(p, s) column would round are refused with the field and the rule, not
/// stored changed (issue 13: a dose of 0.00001 was rounded to 0 and hit the CHECK).
#[test]
fn decimals_beyond_the_column_scale_are_refused() {
    let e = Dosage::new(0.00001, DoseUnit::Mg).unwrap_err();
    assert_eq!((e.field(), e.code()), ("dose", "too_precise"));
    assert_eq!(e.to_string(), "dose: must have at most 4 decimal places");
    assert_eq!(rule(Dosage::parse("0.00001 mg")), Rule::TooPrecise { places: 4 });
    assert!(serde_json::from_str::<Dosage>(r#"{"value":1e-100,"unit":"mg"}"#).is_err());
    assert_eq!(Dosage::new(0.0001, DoseUnit::Mg).unwrap().to_string(), "0.0001 mg");
    assert_eq!(Dosage::new(999_999.999_9, DoseUnit::Suppository).unwrap().to_string(), "999999.9999 suppository");
    let e = HeightCm::new(180.25).unwrap_err();
    assert_eq!((e.field(), e.code()), ("height_cm", "too_precise"));
    assert_eq!(rule(WeightKg::parse("70.05")), Rule::TooPrecise { places: 1 });
    assert_eq!(WeightKg::new(70.1).unwrap().get(), 70.1);
}

#[test]
fn phone() {
    assert_eq!(Phone::parse("+1 (555) 010-0199").unwrap().as_str(), "+15550100199");
    assert_eq!(Phone::parse("+44 20.7946.0958").unwrap().as_str(), "+442079460958");
    for bad in ["5550100199", "+123456", "+1234567890123456", "+0123456789", "+1 555 CALL NOW", "++15550100199"] {
        assert!(Phone::parse(bad).is_err(), "{bad}");
    }
    assert!(Phone::parse("+1234567").is_ok() && Phone::parse("+123456789012345").is_ok());
}

#[test]
fn reason_and_text() {
    assert_eq!(rule(Reason::parse("   emergency          ")), Rule::TooShort { min: 20 });
    assert!(Reason::parse("Unconscious in ED, no care team reachable").is_ok());
    assert!(Reason::parse("Line one of reason\nline two of reason").is_ok());
    assert_eq!(rule(Reason::parse(&"x".repeat(1001))), Rule::TooLong { max: 1000 });
    assert_eq!(rule(Reason::parse("Patient arrested\u{7}, no team around")), Rule::ControlCharacter);
    // Issue 19: characters that carry no words are refused, whatever their count.
    for empty in [
        "a".repeat(20),
        "\u{200b}".repeat(20),
        "\u{301}".repeat(20),
        format!("ab{}", "\u{301}".repeat(20)),
        "aaaa ".repeat(6),
    ] {
        assert!(matches!(rule(Reason::parse(&empty)), Rule::Format { .. } | Rule::ControlCharacter), "{empty:?}");
    }
    // Zero-width characters inside words neither help nor hurt.
    assert!(Reason::parse("Un\u{200b}conscious in ED, no care team").is_ok());
    assert!(Reason::parse("Bewusstlos in der Notaufnahme, Team fehlt").is_ok());

    assert!(ClinicalText::parse("").unwrap().is_empty());
    assert_eq!(rule(ClinicalText::parse_non_empty(" \n ")), Rule::Empty);
    assert_eq!(ClinicalText::parse("  a\n\tb ").unwrap().as_str(), "  a\n\tb ");
    assert!(ClinicalText::parse(&"é".repeat(10_000)).is_ok());
    assert_eq!(rule(ClinicalText::parse(&"a".repeat(10_001))), Rule::TooLong { max: 10_000 });
    assert_eq!(rule(ClinicalText::parse("a\0b")), Rule::NulCharacter);
}

#[test]
fn errors_and_debug_never_reveal_input() {
    const SENTINEL: &str = "SENTINEL-PHI-42@x";
    let errors = [
        Email::parse("SENTINEL-PHI-42@@x").unwrap_err(),
        Mrn::parse(SENTINEL).unwrap_err(),
        Icd10Code::parse(SENTINEL).unwrap_err(),
        Phone::parse(SENTINEL).unwrap_err(),
        Sex::parse(SENTINEL).unwrap_err(),
        BirthDate::parse(SENTINEL).unwrap_err(),
        Quantity::parse(SENTINEL).unwrap_err(),
        Dosage::parse(SENTINEL).unwrap_err(),
    ];
    for e in &errors {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("SENTINEL"), "{shown}");
    }
    let json_err = serde_json::from_str::<Sex>("\"SENTINEL\"").unwrap_err();
    assert!(!json_err.to_string().contains("SENTINEL"));

    let shown = format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        Email::parse("sentinel@example.org").unwrap(),
        PersonName::parse("Sentinel").unwrap(),
        Mrn::parse("SENTINEL").unwrap(),
        Phone::parse("+15550100199").unwrap(),
        Reason::parse("Sentinel reason long enough").unwrap(),
        ClinicalText::parse("sentinel").unwrap(),
        BirthDate::parse_as_of("1970-01-01", date(2026, 1, 1)).unwrap(),
    );
    assert!(!shown.to_lowercase().contains("sentinel") && !shown.contains("1970") && !shown.contains("555"), "{shown}");
}

#[test]
fn with_field_renames() {
    let e = Phone::parse("nope").unwrap_err().with_field("emergency_contact.phone");
    assert_eq!(e.field(), "emergency_contact.phone");
    assert!(e.to_string().starts_with("emergency_contact.phone: must be"));
    assert_eq!(e.code(), "invalid_format");
}

#[test]
fn serde_strings_validate() {
    #[derive(Debug, serde::Deserialize)]
    struct Patient {
        mrn: Mrn,
        email: Email,
        birth_date: BirthDate,
        sex: Sex,
    }
    let p: Patient =
        serde_json::from_str(r#"{"mrn":"ab-1","email":"A@B.ORG","birth_date":"1980-02-03","sex":"female"}"#).unwrap();
    assert_eq!((p.mrn.as_str(), p.email.as_str(), p.sex), ("AB-1", "a@b.org", Sex::Female));
    assert_eq!(serde_json::to_string(&p.birth_date).unwrap(), "\"1980-02-03\"");
    let err =
        serde_json::from_str::<Patient>(r#"{"mrn":"ab 1","email":"a@b.org","birth_date":"1980-02-03","sex":"female"}"#)
            .unwrap_err();
    assert!(err.to_string().contains("mrn: must be letters"));
    assert_eq!(serde_json::to_string(&Icd10Code::parse("e119").unwrap()).unwrap(), "\"E11.9\"");
}
