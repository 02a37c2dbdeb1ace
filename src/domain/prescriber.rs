//! A prescriber's registry numbers, as a pharmacist checks them: the National Provider
//! Identifier (NPI) and the DEA registration number. Both are public identifiers of a
//! professional, not PHI; each is accepted only with a valid check digit.

use super::{DomainError, Rule};

/// A National Provider Identifier: 10 digits, the last a Luhn check digit computed over the
/// first nine prefixed with `80840` (the ISO 7812 issuer prefix of US health identifiers), as
/// the CMS "NPI check digit" standard specifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Npi(String);

const NPI_EXPECTED: &str = "a 10-digit NPI with a valid check digit (Luhn, 80840 prefix)";

/// The Luhn check of `digits` (the last one the check digit).
fn luhn_ok(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl Npi {
    pub const FIELD: &'static str = "npi";

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        let format = || DomainError::new(Self::FIELD, Rule::Format { expected: NPI_EXPECTED });
        if t.len() != 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format());
        }
        let digits: Vec<u8> = b"80840".iter().chain(t.as_bytes()).map(|b| b - b'0').collect();
        if !luhn_ok(&digits) {
            return Err(format());
        }
        Ok(Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(Npi);

/// A DEA registration number: two letters and seven digits. The first letter is the
/// registrant type (A, B, F, G for practitioners; M for mid-level practitioners; the other
/// DEA letters for other registrants), the second the initial of the registrant's last name
/// (or `9` for business names); the last digit is the check digit: the units digit of
/// `(d1 + d3 + d5) + 2 × (d2 + d4 + d6)`. Stored upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeaNumber(String);

const DEA_EXPECTED: &str = "a DEA number: 2 letters and 7 digits with a valid check digit";
const DEA_REGISTRANT_TYPES: &[u8] = b"ABCDEFGHJKLMPRSTUX";

impl DeaNumber {
    pub const FIELD: &'static str = "dea_number";

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let t = input.trim().to_ascii_uppercase();
        if t.is_empty() {
            return Err(DomainError::new(Self::FIELD, Rule::Empty));
        }
        let format = || DomainError::new(Self::FIELD, Rule::Format { expected: DEA_EXPECTED });
        let b = t.as_bytes();
        if b.len() != 9
            || !DEA_REGISTRANT_TYPES.contains(&b[0])
            || !(b[1].is_ascii_uppercase() || b[1] == b'9')
            || !b[2..].iter().all(u8::is_ascii_digit)
        {
            return Err(format());
        }
        let d: Vec<u32> = b[2..].iter().map(|c| u32::from(c - b'0')).collect();
        let check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10;
        if check != d[6] {
            return Err(format());
        }
        Ok(Self(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(DeaNumber);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digit_uses_the_80840_prefix() {
        // CMS's worked example: 123456789 → check digit 3.
        assert_eq!(Npi::parse(" 1234567893 ").unwrap().as_str(), "1234567893");
        for bad in ["1234567890", "1234567894", "123456789", "12345678930", "12345a7893", ""] {
            let e = Npi::parse(bad).unwrap_err();
            assert_eq!(e.field(), "npi", "{bad}");
        }
        // Every single-digit change of a valid NPI is caught.
        let ok = b"1234567893";
        for i in 0..10 {
            for d in b'0'..=b'9' {
                if d == ok[i] {
                    continue;
                }
                let mut m = ok.to_vec();
                m[i] = d;
                assert!(Npi::parse(std::str::from_utf8(&m).unwrap()).is_err());
            }
        }
    }

    #[test]
    fn dea_number_format_and_check_digit() {
        // 1+3+5 + 2×(2+4+6) = 33 → check digit 3.
        assert_eq!(DeaNumber::parse("ab1234563").unwrap().as_str(), "AB1234563");
        assert!(DeaNumber::parse("A91234563").is_ok(), "9 for a business name");
        for bad in ["AB1234564", "AB123456", "AB12345633", "1B1234563", "IB1234563", "A-1234563", ""] {
            assert_eq!(DeaNumber::parse(bad).unwrap_err().field(), "dea_number", "{bad}");
        }
    }
}
