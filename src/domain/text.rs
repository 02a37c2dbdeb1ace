//! Free text: the break-glass reason and clinical free text (notes, message bodies,
//! reactions, instructions). Both are sealed at rest; here we only bound their shape.

use super::{DomainError, Rule, is_forbidden_control};

/// The written justification for a break-glass access: trimmed, 20–1000 characters, no
/// control characters except line breaks and tabs, and words (see [`REASON_MIN_WORDS`]). The minimum is there so "emergency" alone
/// is not enough; the auditor reads this text later.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reason(String);

const REASON_MIN: usize = 20;
const REASON_MAX: usize = 1000;

/// A reason must carry words, not just characters (issue 19: 20 × "a", 20 zero-width spaces
/// or 20 combining marks were accepted). The rule, applied after removing every format
/// character (Unicode general category Cf: zero-width spaces and joiners, bidi marks, soft
/// hyphens…) and every non-spacing or enclosing mark (Mn, Me: combining accents): at least
/// [`REASON_MIN_WORDS`] different words — a word is a run of 2 or more letters (alphabetic
/// characters, any script), compared case-insensitively — and [`REASON_MIN_LETTERS`] letters
/// in all.
const REASON_WORDS: &str = "words: at least 3 different words of 2 or more letters and 15 letters in all \
                            (invisible and combining characters do not count)";
/// Different words a reason needs.
pub const REASON_MIN_WORDS: usize = 3;
/// Letters a reason needs.
pub const REASON_MIN_LETTERS: usize = 15;

fn carries_words(text: &str) -> bool {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    let visible =
        text.chars().filter(|&c| !matches!(get_general_category(c), G::Format | G::NonspacingMark | G::EnclosingMark));
    let mut words = std::collections::BTreeSet::new();
    let mut letters = 0;
    let mut word = String::new();
    for c in visible.chain(std::iter::once(' ')) {
        if c.is_alphabetic() {
            letters += 1;
            word.extend(c.to_lowercase());
        } else {
            if word.chars().count() >= 2 {
                words.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    words.len() >= REASON_MIN_WORDS && letters >= REASON_MIN_LETTERS
}

impl Reason {
    /// Default field name in errors.
    pub const FIELD: &'static str = "reason";

    /// Parses a reason.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        let chars = t.chars().count();
        if chars < REASON_MIN {
            return Err(DomainError::new(Self::FIELD, Rule::TooShort { min: REASON_MIN }));
        }
        if chars > REASON_MAX {
            return Err(DomainError::new(Self::FIELD, Rule::TooLong { max: REASON_MAX }));
        }
        if t.chars().any(|c| is_forbidden_control(c) && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(DomainError::new(Self::FIELD, Rule::ControlCharacter));
        }
        if !carries_words(t) {
            return Err(DomainError::new(Self::FIELD, Rule::Format { expected: REASON_WORDS }));
        }
        Ok(Reason(t.to_string()))
    }

    /// The trimmed reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// The reason often names the patient or their condition.
redacted_debug!(Reason, "Reason");
string_newtype_serde!(Reason);

/// Clinical free text: at most 10 000 characters and no NUL (PostgreSQL `text` cannot hold
/// it, and it truncates strings in C tooling). Kept exactly as entered, whitespace and
/// line breaks included, because formatting in a note can carry meaning. May be empty; use
/// [`ClinicalText::parse_non_empty`] where a value is required (e.g. a message body).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ClinicalText(String);

const TEXT_MAX: usize = 10_000;

impl ClinicalText {
    /// Default field name in errors.
    pub const FIELD: &'static str = "text";

    /// Parses free text (empty allowed).
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        // Byte length ≥ char count, so this cheap test settles most inputs before counting.
        if input.len() > TEXT_MAX && input.chars().count() > TEXT_MAX {
            return Err(DomainError::new(Self::FIELD, Rule::TooLong { max: TEXT_MAX }));
        }
        if input.contains('\0') {
            return Err(DomainError::new(Self::FIELD, Rule::NulCharacter));
        }
        Ok(ClinicalText(input.to_string()))
    }

    /// Like [`ClinicalText::parse`], but refuses empty or whitespace-only text.
    pub fn parse_non_empty(input: &str) -> Result<Self, DomainError> {
        if input.trim().is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        Self::parse(input)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

redacted_debug!(ClinicalText, "ClinicalText");
string_newtype_serde!(ClinicalText);
