//! Identifying and contact values of people: email, phone, person name and medical record
//! number. All of them are PHI when tied to a patient: redacted `Debug`, no `Display`.

use super::{DomainError, Rule, is_forbidden_control};

/// An email address. `as_str()` is the normalized form (trimmed, lower case) used for
/// storage, uniqueness and the blind index; [`Email::as_entered`] keeps the spelling the
/// user typed (trimmed) for display.
///
/// The check is structural, not RFC 5322 in full: ASCII only, one `@`, a local part of
/// 1–64 characters from the unquoted "atext" set with no leading, trailing or doubled dot,
/// and a domain of at least two DNS labels (1–63 letters, digits or hyphens, not starting or
/// ending with a hyphen) whose last label is not all digits. Quoted local parts and
/// internationalized addresses are refused: they are rare and easy to spoof.
#[derive(Clone)]
pub struct Email {
    entered: String,
    normalized: String,
}

const EMAIL_EXPECTED: &str = "an email address like name@example.org";
const EMAIL_MAX: usize = 254;

impl Email {
    /// Default field name in errors.
    pub const FIELD: &'static str = "email";

    /// Parses and normalizes an address.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim();
        let format = || DomainError::new(Self::FIELD, Rule::Format { expected: EMAIL_EXPECTED });
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        if t.chars().count() > EMAIL_MAX {
            return Err(DomainError::new(Self::FIELD, Rule::TooLong { max: EMAIL_MAX }));
        }
        if !t.is_ascii() {
            return Err(format());
        }
        let (local, domain) = t.split_once('@').ok_or_else(format)?;
        if !valid_local_part(local) || !valid_domain(domain) {
            return Err(format());
        }
        Ok(Email { entered: t.to_string(), normalized: t.to_ascii_lowercase() })
    }

    /// The normalized (lower-case) address.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// The trimmed address as entered.
    pub fn as_entered(&self) -> &str {
        &self.entered
    }

    /// The domain part, lower case.
    pub fn domain(&self) -> &str {
        self.normalized.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}
impl Eq for Email {}
impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalized.hash(state);
    }
}

fn valid_local_part(local: &str) -> bool {
    const ATEXT_SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-.";
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(&b))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels.last().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

redacted_debug!(Email, "Email");
string_newtype_serde!(Email);

/// A phone number in E.164 form: `+` and 7–15 digits, the first not `0` (no country code
/// starts with 0). Spaces, dashes, dots and parentheses are stripped on input because
/// people type `+1 (555) 010-0199`; the stored form is `+15550100199`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

const PHONE_EXPECTED: &str = "an international number like +1 555 010 0199 (7 to 15 digits)";

impl Phone {
    /// Default field name in errors.
    pub const FIELD: &'static str = "phone";

    /// Parses and normalizes a number.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        let format = || DomainError::new(Self::FIELD, Rule::Format { expected: PHONE_EXPECTED });
        // Bound the work before allocating: 15 digits with generous separators.
        if t.len() > 40 {
            return Err(format());
        }
        let compact: String = t.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').ok_or_else(format)?;
        let ok =
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if !ok {
            return Err(format());
        }
        Ok(Phone(compact))
    }

    /// The E.164 form, e.g. `+15550100199`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

redacted_debug!(Phone, "Phone");
string_newtype_serde!(Phone);

/// A person's name (given or family name, a contact's name): trimmed, 1–200 characters, no
/// control or bidirectional-override characters. No other restriction: real names contain
/// apostrophes, hyphens, spaces and every script.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

const NAME_MAX: usize = 200;

impl PersonName {
    /// Default field name in errors.
    pub const FIELD: &'static str = "name";

    /// Parses a name.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        if t.chars().count() > NAME_MAX {
            return Err(DomainError::new(Self::FIELD, Rule::TooLong { max: NAME_MAX }));
        }
        if t.chars().any(is_forbidden_control) {
            return Err(DomainError::new(Self::FIELD, Rule::ControlCharacter));
        }
        Ok(PersonName(t.to_string()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

redacted_debug!(PersonName, "PersonName");
string_newtype_serde!(PersonName);

/// A medical record number: 1–32 characters of `A–Z a–z 0–9 -`, stored upper case so
/// `mrn-001` and `MRN-001` are the same record (and the same blind index).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mrn(String);

const MRN_MAX: usize = 32;

impl Mrn {
    /// Default field name in errors.
    pub const FIELD: &'static str = "mrn";

    /// Parses and normalizes an MRN.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        if t.chars().count() > MRN_MAX {
            return Err(DomainError::new(Self::FIELD, Rule::TooLong { max: MRN_MAX }));
        }
        if !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(DomainError::new(Self::FIELD, Rule::Format { expected: "letters, digits and '-' only" }));
        }
        Ok(Mrn(t.to_ascii_uppercase()))
    }

    /// The upper-case MRN.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

redacted_debug!(Mrn, "Mrn");
string_newtype_serde!(Mrn);
