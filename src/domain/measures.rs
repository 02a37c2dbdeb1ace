//! Bounded numbers: symptom severity, prescription quantity and refills, height, weight,
//! and a dose (value with an allow-listed unit). Ranges mirror the database CHECKs so a bad
//! value is a 422 from here rather than a constraint error from PostgreSQL, and decimals
//! carry no more places than their `numeric(p, s)` column keeps: PostgreSQL would round the
//! rest away (a dose of 0.00001 to 0), and no value may change silently.

use std::fmt;

use super::{DomainError, DoseUnit, Rule};

/// Parses a whole number for `field`; the range check is the caller's.
fn parse_integer(field: &'static str, input: &str) -> Result<i64, DomainError> {
    let t = input.trim();
    if t.is_empty() {
        return Err(DomainError::new(field, Rule::Empty));
    }
    t.parse::<i64>().map_err(|_| DomainError::new(field, Rule::Format { expected: "a whole number" }))
}

/// Parses a finite decimal number for `field` (NaN and infinities are refused).
fn parse_decimal(field: &'static str, input: &str) -> Result<f64, DomainError> {
    let t = input.trim();
    if t.is_empty() {
        return Err(DomainError::new(field, Rule::Empty));
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(DomainError::new(field, Rule::Format { expected: "a number" })),
    }
}

/// Whether `value`, written as the shortest decimal that reads back as the same `f64` (Rust's
/// `Display`, which never uses an exponent), has at most `places` digits after the point.
/// Such a value is what PostgreSQL stores exactly when it casts the `float8` to `numeric(p,
/// places)` (it converts via 15 significant digits; every value here has far fewer).
fn fits_scale(value: f64, places: usize) -> bool {
    let text = value.to_string();
    text.split_once('.').is_none_or(|(_, fraction)| fraction.len() <= places)
}

/// Defines an integer newtype checked against an inclusive range, with `new`, `parse`,
/// `get`, `Display`, and serde as a JSON number.
macro_rules! bounded_integer {
    ($(#[$meta:meta])* $name:ident($inner:ty), field = $field:literal, $min:literal ..= $max:literal, $range:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($inner);

        impl $name {
            /// Default field name in errors.
            pub const FIELD: &'static str = $field;
            /// Smallest allowed value.
            pub const MIN: $inner = $min;
            /// Largest allowed value.
            pub const MAX: $inner = $max;

            /// Checks the range.
            pub fn new(value: i64) -> Result<Self, DomainError> {
                <$inner>::try_from(value)
                    .ok()
                    .filter(|v| (Self::MIN..=Self::MAX).contains(v))
                    .map($name)
                    .ok_or_else(|| DomainError::new($field, Rule::OutOfRange { range: $range }))
            }

            /// Parses a decimal integer, then checks the range.
            pub fn parse(input: &str) -> Result<Self, DomainError> {
                Self::new(parse_integer($field, input)?)
            }

            /// The value.
            pub fn get(self) -> $inner {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = DomainError;
            fn try_from(v: i64) -> Result<Self, Self::Error> {
                Self::new(v)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(i64::from(self.0))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <i64 as serde::Deserialize>::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Defines a decimal newtype checked against an inclusive range (finite values only).
macro_rules! bounded_decimal {
    ($(#[$meta:meta])* $name:ident, field = $field:literal, $min:literal ..= $max:literal, $range:literal, places = $places:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        pub struct $name(f64);

        impl $name {
            /// Default field name in errors.
            pub const FIELD: &'static str = $field;
            /// Smallest allowed value.
            pub const MIN: f64 = $min;
            /// Largest allowed value.
            pub const MAX: f64 = $max;
            /// Digits kept after the decimal point (the column's scale).
            pub const PLACES: u8 = $places;

            /// Checks the range (NaN fails the range test too) and the number of decimals.
            pub fn new(value: f64) -> Result<Self, DomainError> {
                if !(Self::MIN..=Self::MAX).contains(&value) {
                    return Err(DomainError::new($field, Rule::OutOfRange { range: $range }));
                }
                if !fits_scale(value, usize::from(Self::PLACES)) {
                    return Err(DomainError::new($field, Rule::TooPrecise { places: Self::PLACES }));
                }
                Ok($name(value))
            }

            /// Parses a decimal number, then checks the range.
            pub fn parse(input: &str) -> Result<Self, DomainError> {
                Self::new(parse_decimal($field, input)?)
            }

            /// The value.
            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl TryFrom<f64> for $name {
            type Error = DomainError;
            fn try_from(v: f64) -> Result<Self, Self::Error> {
                Self::new(v)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_f64(self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <f64 as serde::Deserialize>::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

bounded_integer! {
    /// Severity a patient gives a symptom, 1 (barely noticeable) to 10 (worst imaginable).
    SymptomSeverity(u8), field = "severity", 1 ..= 10, "between 1 and 10"
}

bounded_integer! {
    /// Quantity dispensed on a prescription, in dispensing units: a whole number from 1 to
    /// 10 000. Whole numbers because pharmacies dispense counted units (tablets, mL, pens).
    Quantity(u32), field = "quantity", 1 ..= 10000, "greater than 0 and at most 10000"
}

bounded_integer! {
    /// Refills allowed on a prescription, 0–11 (a year's supply of monthly refills after
    /// the first fill, the common regulatory ceiling).
    Refills(u8), field = "refills_allowed", 0 ..= 11, "between 0 and 11"
}

bounded_decimal! {
    /// Body height in centimetres, 20–300 (premature newborns to the tallest recorded), to
    /// 0.1 cm (`numeric(5, 1)`).
    HeightCm, field = "height_cm", 20.0 ..= 300.0, "between 20 and 300", places = 1
}

bounded_decimal! {
    /// Body weight in kilograms, 0.2–700 (extremely premature newborns to the heaviest
    /// recorded), to 0.1 kg (`numeric(5, 1)`).
    WeightKg, field = "weight_kg", 0.2 ..= 700.0, "between 0.2 and 700", places = 1
}

/// A dose: a positive amount with a unit from the [`DoseUnit`] allow-list, e.g. `500 mg`.
/// The amount is capped at 1 000 000 to refuse absurd values (and overflow in arithmetic) and
/// has at most 4 decimal places, what `medications.dose numeric(12, 4)` stores exactly. So the
/// formatted dose (`Display`, stored as `prescriptions.dose`, at most 100 characters) is at
/// most 7 + 1 + 4 digits, a space and the longest unit label: never near the limit.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawDosage")]
pub struct Dosage {
    value: f64,
    unit: DoseUnit,
}

/// The unchecked wire shape of a [`Dosage`], only used to validate during deserialization.
#[derive(serde::Deserialize)]
struct RawDosage {
    value: f64,
    unit: DoseUnit,
}

impl TryFrom<RawDosage> for Dosage {
    type Error = DomainError;
    fn try_from(raw: RawDosage) -> Result<Self, Self::Error> {
        Dosage::new(raw.value, raw.unit)
    }
}

const DOSE_MAX: f64 = 1_000_000.0;

impl Dosage {
    /// Default field name for the amount in errors.
    pub const FIELD: &'static str = "dose";
    /// Digits kept after the decimal point (`medications.dose numeric(12, 4)`).
    pub const PLACES: u8 = 4;

    /// Checks `0 < value ≤ 1 000 000` (finite) with at most 4 decimal places.
    pub fn new(value: f64, unit: DoseUnit) -> Result<Self, DomainError> {
        if !(value > 0.0 && value <= DOSE_MAX) {
            return Err(DomainError::new(
                Self::FIELD,
                Rule::OutOfRange { range: "greater than 0 and at most 1000000" },
            ));
        }
        if !fits_scale(value, usize::from(Self::PLACES)) {
            return Err(DomainError::new(Self::FIELD, Rule::TooPrecise { places: Self::PLACES }));
        }
        Ok(Dosage { value, unit })
    }

    /// Parses `"<amount> <unit>"` or `"<amount><unit>"`, e.g. `"500 mg"`, `"2.5mL"`,
    /// `"1 tablet"`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (amount, unit) = t.split_at(split);
        if amount.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Format { expected: "an amount and a unit like 500 mg" }));
        }
        Self::new(parse_decimal(Self::FIELD, amount)?, DoseUnit::parse(unit)?)
    }

    /// The amount.
    pub fn value(self) -> f64 {
        self.value
    }

    /// The unit.
    pub fn unit(self) -> DoseUnit {
        self.unit
    }
}

impl fmt::Display for Dosage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.unit)
    }
}
