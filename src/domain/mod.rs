//! Validated domain values ("parse, don't validate"): every type here can only be built by
//! a `parse`/`new` that checks its rules, so code holding one never re-checks it.
//!
//! Errors ([`DomainError`]) name the field and the rule broken but never echo the input,
//! because the input may be PHI and errors end up in logs and API responses. For the same
//! reason the PHI-bearing types have a redacted `Debug` and no `Display`; use `as_str()`
//! deliberately where the value is needed.
//!
//! Each type carries a default field name (the API's JSON name); rename it for another
//! context with [`DomainError::with_field`] (e.g. `"emergency_contact.phone"`).

use std::borrow::Cow;

/// Implements `TryFrom<String>`, `TryFrom<&str>`, `FromStr`, and serde for a string
/// newtype with `parse(&str)` and `as_str()`. Deserialization goes through `parse`, so a
/// JSON body can never produce an unchecked value, and the error never contains the input.
macro_rules! string_newtype_serde {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = $crate::domain::DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                <$t>::parse(&s)
            }
        }
        impl TryFrom<&str> for $t {
            type Error = $crate::domain::DomainError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                <$t>::parse(s)
            }
        }
        impl std::str::FromStr for $t {
            type Err = $crate::domain::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::parse(s)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <String as serde::Deserialize>::deserialize(d)?;
                <$t>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// `Debug` that prints only the type name, for values that may be PHI.
macro_rules! redacted_debug {
    ($t:ty, $name:literal) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!($name, "(<redacted>)"))
            }
        }
    };
}

/// A closed set of labels matching a PostgreSQL enum. Parsing trims and ignores ASCII case
/// (plus optional aliases); output is always the canonical label. Serde uses the same
/// `parse`, rather than derive, so an unknown value is not echoed back in the error.
macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        $name:ident, field = $field:literal,
        { $( $(#[$vmeta:meta])* $variant:ident => $label:literal $(| $alias:literal)* ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every canonical label (the PostgreSQL enum labels), in declaration order.
            pub const LABELS: &'static [&'static str] = &[$($label),+];
            /// The default field name used in errors.
            pub const FIELD: &'static str = $field;

            /// The canonical label.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }

            /// Parses a label (trimmed, ASCII case-insensitive, aliases accepted).
            pub fn parse(input: &str) -> Result<Self, $crate::domain::DomainError> {
                let t = input.trim();
                $(
                    if t.eq_ignore_ascii_case($label) $(|| t.eq_ignore_ascii_case($alias))* {
                        return Ok($name::$variant);
                    }
                )+
                Err($crate::domain::DomainError::new(
                    $field,
                    $crate::domain::Rule::NotAllowed { allowed: Self::LABELS },
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        string_newtype_serde!($name);
    };
}

mod clinical;
mod dates;
mod identity;
mod measures;
mod prescriber;
mod text;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use clinical::{BloodType, DoseUnit, Icd10Code, MedicationRoute, Severity, Sex};
pub use dates::{BirthDate, EARLIEST_BIRTH_DATE, parse_date};
pub use identity::{Email, Mrn, PersonName, Phone};
pub use measures::{Dosage, HeightCm, Quantity, Refills, SymptomSeverity, WeightKg};
pub use prescriber::{DeaNumber, Npi};
pub use text::{ClinicalText, Reason};

/// A value that failed validation: which field, and which rule. Never the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct DomainError {
    field: Cow<'static, str>,
    rule: Rule,
}

impl DomainError {
    /// An error for `field` breaking `rule`.
    pub fn new(field: impl Into<Cow<'static, str>>, rule: Rule) -> Self {
        DomainError { field: field.into(), rule }
    }

    /// The same error reported under another field name (e.g. `"symptoms[2].severity"`).
    #[must_use]
    pub fn with_field(self, field: impl Into<Cow<'static, str>>) -> Self {
        DomainError { field: field.into(), rule: self.rule }
    }

    /// The field name, as the API names it.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The rule broken.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// A stable machine-readable code for the rule (for `{"error": {"code": …}}`).
    pub fn code(&self) -> &'static str {
        self.rule.code()
    }
}

/// The validation rules. Messages are complete phrases after the field name, e.g.
/// `"email: must be at most 254 characters"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// A required value is empty or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// Shorter (in characters) than the minimum.
    #[error("must be at least {min} characters")]
    TooShort {
        /// Minimum number of characters.
        min: usize,
    },
    /// Longer (in characters) than the maximum.
    #[error("must be at most {max} characters")]
    TooLong {
        /// Maximum number of characters.
        max: usize,
    },
    /// Contains control characters (or bidirectional overrides) that are not allowed.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// Contains a NUL character, which PostgreSQL `text` cannot store.
    #[error("must not contain NUL characters")]
    NulCharacter,
    /// Does not have the required shape.
    #[error("must be {expected}")]
    Format {
        /// Description of the expected shape, e.g. `"a date as YYYY-MM-DD"`.
        expected: &'static str,
    },
    /// A number outside its allowed range.
    #[error("must be {range}")]
    OutOfRange {
        /// Description of the range, e.g. `"between 0 and 11"`.
        range: &'static str,
    },
    /// A date after today.
    #[error("must not be in the future")]
    InFuture,
    /// A date before the earliest allowed one.
    #[error("must not be before {min}")]
    TooEarly {
        /// The earliest allowed date, `YYYY-MM-DD`.
        min: &'static str,
    },
    /// More digits after the decimal point than the column stores (it would round the value).
    #[error("must have at most {places} decimal places")]
    TooPrecise {
        /// Digits allowed after the decimal point.
        places: u8,
    },
    /// Not one of a closed set of labels.
    #[error("must be one of: {}", allowed.join(", "))]
    NotAllowed {
        /// The allowed labels.
        allowed: &'static [&'static str],
    },
}

impl Rule {
    /// A stable snake_case code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            Rule::Empty => "empty",
            Rule::TooShort { .. } => "too_short",
            Rule::TooLong { .. } => "too_long",
            Rule::ControlCharacter => "control_character",
            Rule::NulCharacter => "nul_character",
            Rule::Format { .. } => "invalid_format",
            Rule::OutOfRange { .. } => "out_of_range",
            Rule::InFuture => "in_future",
            Rule::TooEarly { .. } => "too_early",
            Rule::TooPrecise { .. } => "too_precise",
            Rule::NotAllowed { .. } => "not_allowed",
        }
    }
}

/// Unicode control characters (Cc) plus the bidirectional embedding/override/isolate
/// characters, which can make a name or reason display differently from what is stored.
pub(crate) fn is_forbidden_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}
