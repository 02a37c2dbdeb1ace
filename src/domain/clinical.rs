//! Clinical coded values: the closed sets stored as PostgreSQL enums (sex, allergy
//! severity, blood type, medication route, dose unit) and the ICD-10-CM diagnosis code.
//! These stay unencrypted in the database because queries filter and sort on them.

use super::{DomainError, Rule};

label_enum! {
    /// Administrative sex of a patient (`sex` enum).
    Sex, field = "sex", {
        /// Female.
        Female => "female",
        /// Male.
        Male => "male",
        /// Another sex.
        Other => "other",
        /// Not known or not recorded.
        Unknown => "unknown",
    }
}

label_enum! {
    /// Severity of an allergy (`allergy_severity` enum).
    Severity, field = "severity", {
        /// Mild reaction.
        Mild => "mild",
        /// Moderate reaction.
        Moderate => "moderate",
        /// Severe reaction.
        Severe => "severe",
        /// Anaphylaxis or comparable.
        LifeThreatening => "life_threatening",
    }
}

label_enum! {
    /// ABO/Rh blood type (`blood_type` enum). Common spellings such as `A+` or `AB-` are
    /// accepted on input.
    BloodType, field = "blood_type", {
        /// A, Rh positive.
        APos => "a_pos" | "A+",
        /// A, Rh negative.
        ANeg => "a_neg" | "A-",
        /// B, Rh positive.
        BPos => "b_pos" | "B+",
        /// B, Rh negative.
        BNeg => "b_neg" | "B-",
        /// AB, Rh positive.
        AbPos => "ab_pos" | "AB+",
        /// AB, Rh negative.
        AbNeg => "ab_neg" | "AB-",
        /// O, Rh positive.
        OPos => "o_pos" | "O+",
        /// O, Rh negative.
        ONeg => "o_neg" | "O-",
        /// Not known.
        Unknown => "unknown",
    }
}

label_enum! {
    /// Route of administration of a medication (`medication_route` enum).
    MedicationRoute, field = "route", {
        /// By mouth.
        Oral => "oral" | "po",
        /// Intravenous.
        Iv => "iv" | "intravenous",
        /// Intramuscular.
        Im => "im" | "intramuscular",
        /// Under the skin.
        Subcutaneous => "subcutaneous" | "sc" | "subq",
        /// On the skin.
        Topical => "topical",
        /// Breathed in.
        Inhaled => "inhaled",
        /// Rectal.
        Rectal => "rectal",
        /// Under the tongue.
        Sublingual => "sublingual",
        /// Through the skin by patch.
        Transdermal => "transdermal",
        /// Into the nose.
        Nasal => "nasal",
        /// Into the eye.
        Ophthalmic => "ophthalmic",
        /// Into the ear.
        Otic => "otic",
        /// Any other route.
        Other => "other",
    }
}

label_enum! {
    /// Unit of a dose (`dose_unit` enum). An allow-list, because free-text units ("5 ml
    /// tsp?") are a classic source of dosing errors. Case is ignored on input and simple
    /// plurals/synonyms are accepted; output is the canonical spelling.
    DoseUnit, field = "unit", {
        /// Milligram.
        Mg => "mg",
        /// Gram.
        G => "g",
        /// Microgram (`ug`/`µg` accepted).
        Mcg => "mcg" | "ug" | "µg",
        /// Millilitre.
        Ml => "mL",
        /// Litre.
        L => "L",
        /// Units (insulin, heparin, …).
        Units => "units" | "unit",
        /// International units.
        Iu => "IU",
        /// Milliequivalent.
        MEq => "mEq",
        /// Millimole.
        Mmol => "mmol",
        /// Tablet.
        Tablet => "tablet" | "tablets" | "tab",
        /// Capsule.
        Capsule => "capsule" | "capsules" | "cap",
        /// Inhaler puff.
        Puff => "puff" | "puffs",
        /// Drop.
        Drop => "drop" | "drops",
        /// Transdermal patch.
        Patch => "patch" | "patches",
        /// Nasal or oral spray.
        Spray => "spray" | "sprays",
        /// Suppository.
        Suppository => "suppository" | "suppositories",
        /// Topical application.
        Application => "application" | "applications",
    }
}

/// An ICD-10-CM diagnosis code, stored in canonical form: upper case, with the dot after
/// the three-character category (`E11.9`, `I10`, `S52.521A`, `T36.0X1A`).
///
/// Accepted input (trimmed, any ASCII case): a letter, a digit, a letter or digit
/// (the category), then optionally up to four more letters or digits, with or without the
/// dot. The dotless form is accepted and normalized (`E119` → `E11.9`) because many EHR
/// exports and claims files drop the dot; storing one form keeps equality and uniqueness
/// checks simple. This checks the format only, not that the code exists in the code set.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Icd10Code(String);

const ICD10_EXPECTED: &str = "an ICD-10-CM code like E11.9, I10 or S52.521A";

impl Icd10Code {
    /// Default field name in errors.
    pub const FIELD: &'static str = "icd10_code";

    /// Parses and normalizes a code.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim();
        let format = || DomainError::new(Self::FIELD, Rule::Format { expected: ICD10_EXPECTED });
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        // 3 + '.' + 4 is the longest valid form; the early cut also keeps work bounded.
        if t.len() > 8 || !t.is_ascii() {
            return Err(format());
        }
        let (category, extension) = match t.split_once('.') {
            Some((head, tail)) if head.len() == 3 && !tail.is_empty() => (head, tail),
            Some(_) => return Err(format()),
            None if t.len() >= 3 => t.split_at(3),
            None => return Err(format()),
        };
        let category_ok = matches!(
            category.as_bytes(),
            [letter, digit, third]
                if letter.is_ascii_alphabetic()
                    && digit.is_ascii_digit()
                    && third.is_ascii_alphanumeric()
        );
        let extension_ok = extension.len() <= 4 && extension.bytes().all(|b| b.is_ascii_alphanumeric());
        if !category_ok || !extension_ok {
            return Err(format());
        }
        let mut code = category.to_ascii_uppercase();
        if !extension.is_empty() {
            code.push('.');
            code.push_str(&extension.to_ascii_uppercase());
        }
        Ok(Icd10Code(code))
    }

    /// The canonical dotted form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The three-character category (`E11` of `E11.9`), e.g. for grouping.
    pub fn category(&self) -> &str {
        self.0.get(..3).unwrap_or(&self.0)
    }
}

// A diagnosis code tied to a patient is PHI, so it stays out of `Debug` output too.
redacted_debug!(Icd10Code, "Icd10Code");
string_newtype_serde!(Icd10Code);
