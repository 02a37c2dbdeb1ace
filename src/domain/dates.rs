//! Calendar dates from the API (`YYYY-MM-DD`) and the patient's date of birth.

use chrono::{Duration, NaiveDate, Utc};

use super::{DomainError, Rule};

/// The earliest date of birth accepted, as text for error messages.
pub const EARLIEST_BIRTH_DATE: &str = "1900-01-01";

const DATE_EXPECTED: &str = "a date as YYYY-MM-DD";

/// Parses a strict `YYYY-MM-DD` calendar date (for `diagnosed_on`, `onset`, …).
///
/// The shape is checked by hand first because chrono's `%Y-%m-%d` also accepts forms such as
/// `+2020-1-5`, and a stored date should have exactly one spelling.
pub fn parse_date(field: &'static str, input: &str) -> Result<NaiveDate, DomainError> {
    let format = || DomainError::new(field, Rule::Format { expected: DATE_EXPECTED });
    let t = input.trim();
    if t.is_empty() {
        return Err(DomainError::new(field, Rule::Empty));
    }
    let b = t.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format());
    }
    let number = |range: std::ops::Range<usize>| t.get(range).and_then(|s| s.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return Err(format());
    };
    let year = i32::try_from(year).map_err(|_| format())?;
    // Rejects impossible days such as 2023-02-29 or 2024-13-01.
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(format)
}

/// A date of birth: not before 1900-01-01 and not in the future.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BirthDate(NaiveDate);

impl BirthDate {
    /// Default field name in errors.
    pub const FIELD: &'static str = "birth_date";

    /// Parses against the current date. "Today" is taken in UTC+14, the time zone whose
    /// calendar is furthest ahead, so a baby born today anywhere on Earth is accepted while
    /// any date that is still in the future everywhere is refused.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        Self::parse_as_of(input, latest_today())
    }

    /// Parses against an explicit `today` (deterministic; what tests and callers with a
    /// clinic time zone use).
    pub fn parse_as_of(input: &str, today: NaiveDate) -> Result<Self, DomainError> {
        Self::from_date(parse_date(Self::FIELD, input)?, today)
    }

    /// Checks an already-typed date against `today`.
    pub fn from_date(date: NaiveDate, today: NaiveDate) -> Result<Self, DomainError> {
        if date > today {
            return Err(DomainError::new(Self::FIELD, Rule::InFuture));
        }
        if date < earliest_birth_date() {
            return Err(DomainError::new(Self::FIELD, Rule::TooEarly { min: EARLIEST_BIRTH_DATE }));
        }
        Ok(BirthDate(date))
    }

    /// The date.
    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// The `YYYY-MM-DD` form (what is sealed and what the API returns).
    pub fn to_iso_string(self) -> String {
        self.0.format("%Y-%m-%d").to_string()
    }
}

fn earliest_birth_date() -> NaiveDate {
    // Both constants are valid dates; MIN is only a formal fallback.
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

fn latest_today() -> NaiveDate {
    (Utc::now() + Duration::hours(14)).date_naive()
}

// A date of birth is PHI (an identifier under the HIPAA Safe Harbor rule).
impl std::fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BirthDate(<redacted>)")
    }
}

impl TryFrom<String> for BirthDate {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl std::str::FromStr for BirthDate {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for BirthDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso_string())
    }
}

impl<'de> serde::Deserialize<'de> for BirthDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <String as serde::Deserialize>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}
