//! What "the same family name" and "the same address" mean before they are blind-indexed:
//! compatibility-decomposed, accents dropped, lower-cased; a family name keeps only letters
//! and digits ("O'Brien-Smith" = "obriensmith"); an address becomes its words, with the common
//! street-type abbreviations folded ("12 Main Street, Apt. 4" = "12 main st apt 4").
//! Staff profiles (at write) and patients (by the engine) go through the same functions, so
//! equal digests mean equal normalized text.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Blind-index kind labels (domain separation from MRN and email indexes).
pub const FAMILY_NAME_KIND: &str = "monitor/family_name";
pub const ADDRESS_KIND: &str = "monitor/address";

fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
    s.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase)
}

/// The normalized family name; `None` when nothing comparable is left.
pub fn family_name(s: &str) -> Option<String> {
    let out: String = folded(s).filter(|c| c.is_alphanumeric()).collect();
    (!out.is_empty()).then_some(out)
}

/// The normalized address; `None` when nothing comparable is left.
pub fn address(s: &str) -> Option<String> {
    let spaced: String = folded(s).map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    let words: Vec<&str> = spaced.split_whitespace().map(abbreviate).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn abbreviate(word: &str) -> &str {
    match word {
        "street" => "st",
        "avenue" => "ave",
        "road" => "rd",
        "boulevard" => "blvd",
        "drive" => "dr",
        "lane" => "ln",
        "court" => "ct",
        "place" => "pl",
        "apartment" | "apt" | "unit" | "suite" | "ste" => "apt",
        "north" => "n",
        "south" => "s",
        "east" => "e",
        "west" => "w",
        w => w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_names_compare_without_case_accents_or_punctuation() {
        assert_eq!(family_name("O'Brien-Smith"), family_name("obrien smith"));
        assert_eq!(family_name("Müller"), family_name("MULLER"));
        assert_eq!(family_name("Ñúñez"), Some("nunez".into()));
        assert_ne!(family_name("Smith"), family_name("Smyth"));
        assert_eq!(family_name(" -' "), None);
    }

    #[test]
    fn addresses_fold_spacing_punctuation_and_street_types() {
        assert_eq!(address("12 Main Street, Apt. 4"), Some("12 main st apt 4".into()));
        assert_eq!(address("12  MAIN ST apartment 4"), address("12 Main Street, Apt. 4"));
        assert_ne!(address("12 Main St"), address("21 Main St"));
        assert_eq!(address(", ."), None);
    }
}
