//! Property tests of the domain parsers: generated valid ICD-10 codes, arbitrary input
//! (never panics, parse is idempotent on its own output, errors never echo the input),
//! dates relative to `today`, and numeric ranges.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;

use super::*;

fn today_strategy() -> impl Strategy<Value = NaiveDate> {
    // 1950-01-01 .. roughly 2150.
    (0i64..73_000).prop_map(|d| NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + Duration::days(d))
}

/// Every parser must be total: `Ok` or `Err`, never a panic, and `parse(as_str(x)) == x`.
fn check_all_parsers(s: &str) {
    macro_rules! idempotent {
        ($t:ty) => {
            if let Ok(v) = <$t>::parse(s) {
                let again = <$t>::parse(v.as_str()).unwrap();
                assert_eq!(again.as_str(), v.as_str());
            }
        };
    }
    idempotent!(Email);
    idempotent!(Mrn);
    idempotent!(Icd10Code);
    idempotent!(PersonName);
    idempotent!(Phone);
    idempotent!(Reason);
    idempotent!(ClinicalText);
    idempotent!(Sex);
    idempotent!(Severity);
    idempotent!(BloodType);
    idempotent!(MedicationRoute);
    idempotent!(DoseUnit);
    let _ = BirthDate::parse(s);
    let _ = parse_date("d", s);
    let _ = SymptomSeverity::parse(s);
    let _ = Quantity::parse(s);
    let _ = Refills::parse(s);
    let _ = HeightCm::parse(s);
    let _ = WeightKg::parse(s);
    let _ = Dosage::parse(s);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_icd10_codes_parse_and_round_trip(
        code in "[A-Z][0-9][A-Z0-9](\\.[A-Z0-9]{1,4})?"
    ) {
        let parsed = Icd10Code::parse(&code).unwrap();
        prop_assert_eq!(parsed.as_str(), code.as_str());
        // Lower case and the dotless spelling normalize to the same canonical code.
        let lower = Icd10Code::parse(&code.to_ascii_lowercase()).unwrap();
        prop_assert_eq!(lower.as_str(), code.as_str());
        let dotless = Icd10Code::parse(&code.replace('.', "")).unwrap();
        prop_assert_eq!(&dotless, &parsed);
        let json = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(serde_json::from_str::<Icd10Code>(&json).unwrap(), parsed);
    }

    #[test]
    fn malformed_icd10_is_rejected(
        code in "[0-9][A-Z0-9]{2}(\\.[A-Z0-9]{1,4})?|[A-Z][A-Z][A-Z0-9](\\.[A-Z0-9]{1,4})?|[A-Z][0-9][A-Z0-9]\\.[A-Z0-9]{5,8}"
    ) {
        prop_assert!(Icd10Code::parse(&code).is_err());
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        check_all_parsers(&s);
    }

    #[test]
    fn near_miss_strings_never_panic(
        s in "[ \\t+\\-.@()0-9A-Za-zé\u{0}\u{202E}]{0,40}"
    ) {
        check_all_parsers(&s);
    }

    #[test]
    fn errors_never_echo_the_input(s in "[A-Za-z]{12,40}") {
        let errors = [
            Email::parse(&s).err(),
            Icd10Code::parse(&s).err(),
            Phone::parse(&s).err(),
            Sex::parse(&s).err(),
            BirthDate::parse(&s).err(),
            Quantity::parse(&s).err(),
            Dosage::parse(&s).err(),
        ];
        for e in errors.into_iter().flatten() {
            prop_assert!(!e.to_string().contains(&s));
        }
    }

    #[test]
    fn future_birth_dates_are_rejected(today in today_strategy(), ahead in 1i64..40_000) {
        let future = (today + Duration::days(ahead)).format("%Y-%m-%d").to_string();
        let err = BirthDate::parse_as_of(&future, today).unwrap_err();
        prop_assert_eq!(err.rule(), &Rule::InFuture);
    }

    #[test]
    fn past_birth_dates_since_1900_are_accepted(today in today_strategy(), back in 0i64..100_000) {
        let day = today - Duration::days(back);
        let text = day.format("%Y-%m-%d").to_string();
        let result = BirthDate::parse_as_of(&text, today);
        if day >= NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() {
            let parsed = result.unwrap();
            prop_assert_eq!(parsed.date(), day);
            prop_assert_eq!(parsed.to_iso_string(), text);
        } else {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn quantity_range(n in any::<i64>()) {
        let ok = (1..=10_000).contains(&n);
        prop_assert_eq!(Quantity::new(n).is_ok(), ok);
        prop_assert_eq!(Quantity::parse(&n.to_string()).is_ok(), ok);
    }

    #[test]
    fn quantity_inside_accepted(n in 1i64..=10_000) {
        prop_assert_eq!(i64::from(Quantity::new(n).unwrap().get()), n);
    }

    #[test]
    fn quantity_outside_rejected(n in prop_oneof![i64::MIN..=0, 10_001i64..=i64::MAX]) {
        prop_assert!(Quantity::new(n).is_err());
    }

    #[test]
    fn refills_range(n in -1000i64..1000) {
        prop_assert_eq!(Refills::new(n).is_ok(), (0..=11).contains(&n));
        prop_assert_eq!(Refills::parse(&format!(" {n} ")).is_ok(), (0..=11).contains(&n));
    }

    #[test]
    fn symptom_severity_range(n in -100i64..100) {
        prop_assert_eq!(SymptomSeverity::new(n).is_ok(), (1..=10).contains(&n));
    }

    #[test]
    fn height_weight_ranges(tenths in -10_000i64..20_000) {
        let x = tenths as f64 / 10.0;
        prop_assert_eq!(HeightCm::new(x).is_ok(), (20.0..=300.0).contains(&x));
        prop_assert_eq!(WeightKg::new(x).is_ok(), (0.2..=700.0).contains(&x));
    }

    /// numeric(5, 1) would round a second decimal away: refused, never stored changed.
    #[test]
    fn height_weight_refuse_a_second_decimal(tenths in 200i64..3000, hundredth in 1i64..10) {
        let x = (tenths * 10 + hundredth) as f64 / 100.0;
        prop_assert_eq!(HeightCm::new(x).unwrap_err().rule().clone(), Rule::TooPrecise { places: 1 });
        prop_assert_eq!(WeightKg::new(x).unwrap_err().rule().clone(), Rule::TooPrecise { places: 1 });
    }

    /// Every dose numeric(12, 4) can hold exactly is accepted, and formats (as
    /// prescriptions.dose stores it) well within that column's 100 characters, reading back
    /// as the same amount.
    #[test]
    fn dosage_in_ten_thousandths(n in 1i64..=10_000_000_000, unit in prop::sample::select(DoseUnit::ALL)) {
        let x = n as f64 / 10_000.0;
        let d = Dosage::new(x, unit).unwrap();
        let text = d.to_string();
        prop_assert!(text.chars().count() <= 30, "{}", text);
        prop_assert_eq!(Dosage::parse(&text).unwrap(), d);
    }

    /// A fifth decimal is what numeric(12, 4) rounds away (0.00001 became 0): refused.
    #[test]
    fn dosage_refuses_a_fifth_decimal(n in 0i64..1_000_000_000, last in 1i64..10) {
        let x = (n * 10 + last) as f64 / 100_000.0;
        prop_assert_eq!(Dosage::new(x, DoseUnit::Mg).unwrap_err().rule().clone(), Rule::TooPrecise { places: 4 });
    }

    #[test]
    fn mrn_normalizes_to_upper(s in "[A-Za-z0-9-]{1,32}") {
        let mrn = Mrn::parse(&s).unwrap();
        prop_assert_eq!(mrn.as_str(), s.to_ascii_uppercase());
    }

    #[test]
    fn phone_accepts_e164(digits in "[1-9][0-9]{6,14}") {
        let spaced: String = digits.chars().flat_map(|c| [c, ' ']).collect();
        let phone = Phone::parse(&format!("+{spaced}")).unwrap();
        prop_assert_eq!(phone.as_str(), format!("+{digits}"));
    }
}
