//! MongoDB Extended JSON v2 (canonical and relaxed) read from `serde_json::Value`.
//!
//! We decode the handful of wrappers `mongoexport` emits ourselves instead of going through
//! `bson`: the import needs typed access to a few fields with errors that name the field
//! but never echo the value (it may be PHI), and a `Value` walk does that in ~200 lines
//! without a second document model and its dependency tree.
//!
//! Accepted forms (every accessor also takes the plain relaxed JSON form):
//! - ObjectId: `{"$oid": "<24 hex>"}` or a bare 24-hex string (references stored as text);
//! - date: `{"$date": "<ISO-8601>"}`, `{"$date": {"$numberLong": "<ms>"}}`, `{"$date": <ms>}`,
//!   or a bare ISO-8601 string;
//! - integers: `{"$numberInt": "…"}`, `{"$numberLong": "…"}`, an integral `{"$numberDouble"}`,
//!   or a JSON number;
//! - doubles: `{"$numberDouble": "…"}` (finite only), `$numberInt`, `$numberLong`,
//!   `$numberDecimal`, or a JSON number;
//! - binary: `{"$binary": {"base64": "…", "subType": "00"}}` (v2), `{"$binary": "…",
//!   "$type": "00"}` (v1), or a base64 string.

use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// What was wrong with one field. The path is added by the caller ([`super::fields`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Present, but not the expected kind of value.
    Expected(&'static str),
    /// The right kind, but failed a domain rule (text of the rule, never the value).
    Rule(String),
}

pub type Decoded<T> = Result<T, Problem>;

fn wrapper<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) if m.len() <= 2 => m.get(key),
        _ => None,
    }
}

/// A 24-hex ObjectId, returned lower case.
pub fn oid(v: &Value) -> Decoded<String> {
    let s = match wrapper(v, "$oid") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Problem::Expected("an ObjectId")),
        None => v.as_str().ok_or(Problem::Expected("an ObjectId"))?,
    };
    if s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(Problem::Expected("an ObjectId (24 hexadecimal digits)"))
    }
}

/// A string value.
pub fn string(v: &Value) -> Decoded<&str> {
    v.as_str().ok_or(Problem::Expected("a string"))
}

/// A whole number.
pub fn int(v: &Value) -> Decoded<i64> {
    const EXPECTED: Problem = Problem::Expected("a whole number");
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    if let Some(f) = v.as_f64() {
        return integral(f).ok_or(EXPECTED);
    }
    for key in ["$numberInt", "$numberLong"] {
        if let Some(inner) = wrapper(v, key) {
            return inner.as_str().and_then(|s| s.trim().parse::<i64>().ok()).ok_or(EXPECTED);
        }
    }
    if let Some(inner) = wrapper(v, "$numberDouble") {
        return inner.as_str().and_then(|s| s.trim().parse::<f64>().ok()).and_then(integral).ok_or(EXPECTED);
    }
    Err(EXPECTED)
}

fn integral(f: f64) -> Option<i64> {
    // 2^53: every integer below it is exact in a double.
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
}

/// A finite decimal number.
pub fn double(v: &Value) -> Decoded<f64> {
    const EXPECTED: Problem = Problem::Expected("a finite number");
    if let Some(f) = v.as_f64() {
        return Ok(f);
    }
    for key in ["$numberDouble", "$numberInt", "$numberLong", "$numberDecimal"] {
        if let Some(inner) = wrapper(v, key) {
            return inner.as_str().and_then(|s| s.trim().parse::<f64>().ok()).filter(|f| f.is_finite()).ok_or(EXPECTED);
        }
    }
    Err(EXPECTED)
}

/// A boolean.
pub fn boolean(v: &Value) -> Decoded<bool> {
    v.as_bool().ok_or(Problem::Expected("true or false"))
}

/// The earliest instant or date accepted anywhere in an export.
pub const MIN_DATE: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date");
/// The first instant or date refused: 2100-01-01 (a year-10000 or 9999-12-31 placeholder
/// is a legacy "never", not a time we can store and print faithfully).
pub const END_DATE: NaiveDate = NaiveDate::from_ymd_opt(2100, 1, 1).expect("valid date");
const RANGE_RULE: &str = "must be between 1900-01-01 and 2099-12-31";

fn in_range(d: NaiveDate) -> bool {
    (MIN_DATE..END_DATE).contains(&d)
}

/// A UTC instant, 1900-01-01T00:00:00Z ≤ t < 2100-01-01T00:00:00Z.
pub fn datetime(v: &Value) -> Decoded<DateTime<Utc>> {
    let t = instant(v)?.with_timezone(&Utc);
    if in_range(t.date_naive()) { Ok(t) } else { Err(Problem::Rule(RANGE_RULE.into())) }
}

/// An instant with the offset it was written at (UTC for millisecond forms).
fn instant(v: &Value) -> Decoded<DateTime<FixedOffset>> {
    const EXPECTED: Problem = Problem::Expected("a date");
    let inner = wrapper(v, "$date").unwrap_or(v);
    let utc = |t: DateTime<Utc>| t.fixed_offset();
    match inner {
        Value::String(s) => parse_iso(s).ok_or(EXPECTED),
        Value::Number(_) => int(inner).ok().and_then(millis).map(utc).ok_or(EXPECTED),
        Value::Object(_) => wrapper(inner, "$numberLong")
            .and_then(Value::as_str)
            .and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(millis)
            .map(utc)
            .ok_or(EXPECTED),
        _ => Err(EXPECTED),
    }
}

/// A calendar date read from the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarDate {
    pub date: NaiveDate,
    /// The source carried a time of day other than midnight (it is not kept: the column is a
    /// date). Counted in the report.
    pub time_dropped: bool,
}

/// A calendar date: a `YYYY-MM-DD` string, or the date *written* in a `$date` / ISO string at
/// its own offset (`1985-03-04T00:00:00+05:30` is 1985-03-04, not the UTC date of that
/// instant); millisecond forms are read in UTC.
pub fn date(v: &Value) -> Decoded<CalendarDate> {
    let parsed = match v.as_str().and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()) {
        Some(d) => CalendarDate { date: d, time_dropped: false },
        None => {
            let t = instant(v)?;
            CalendarDate { date: t.date_naive(), time_dropped: t.time() != NaiveTime::MIN }
        }
    };
    if in_range(parsed.date) { Ok(parsed) } else { Err(Problem::Rule(RANGE_RULE.into())) }
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

fn parse_iso(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    // mongoexport of old servers writes "+0000" offsets without the colon.
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok()
}

/// A decimal number with the text it was written as (the shortest round-trip form for JSON
/// numbers, the string of `$numberDouble` / `$numberDecimal` / `$numberInt` / `$numberLong`),
/// so callers can refuse values their column would round.
pub fn decimal(v: &Value) -> Decoded<(f64, String)> {
    const EXPECTED: Problem = Problem::Expected("a finite number");
    if let Value::Number(n) = v {
        return n.as_f64().filter(|f| f.is_finite()).map(|f| (f, n.to_string())).ok_or(EXPECTED);
    }
    for key in ["$numberDouble", "$numberInt", "$numberLong", "$numberDecimal"] {
        if let Some(inner) = wrapper(v, key) {
            let text = inner.as_str().map(str::trim).ok_or(EXPECTED)?;
            let f = text.parse::<f64>().ok().filter(|f| f.is_finite()).ok_or(EXPECTED)?;
            return Ok((f, text.to_owned()));
        }
    }
    Err(EXPECTED)
}

/// Digits after the decimal point that carry value in a decimal text (`72.50` → 1,
/// `1.5e-3` → 4, `1e2` → 0); `None` when the text is not a plain decimal.
pub fn fraction_digits(text: &str) -> Option<u32> {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let mantissa = mantissa.trim_start_matches(['+', '-']);
    let frac = match mantissa.split_once('.') {
        Some((int, frac)) if int.bytes().all(|b| b.is_ascii_digit()) => frac,
        None if mantissa.bytes().all(|b| b.is_ascii_digit()) => "",
        _ => return None,
    };
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = frac.trim_end_matches('0').len() as i64;
    u32::try_from((significant - exp).max(0)).ok()
}

/// Binary content (bytes) from `$binary` (v1 or v2) or a base64 string.
pub fn binary(v: &Value) -> Decoded<Vec<u8>> {
    const EXPECTED: Problem = Problem::Expected("base64 or $binary content");
    let b64 = match v {
        Value::String(s) => s.as_str(),
        Value::Object(m) => match m.get("$binary") {
            Some(Value::Object(inner)) => inner.get("base64").and_then(Value::as_str).ok_or(EXPECTED)?,
            Some(Value::String(s)) if m.contains_key("$type") => s.as_str(),
            _ => return Err(EXPECTED),
        },
        _ => return Err(EXPECTED),
    };
    // Exports wrap long base64 at 76 columns in some tools: ignore whitespace.
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| EXPECTED)
}

/// An embedded document.
pub fn object(v: &Value) -> Decoded<&Map<String, Value>> {
    v.as_object().ok_or(Problem::Expected("an object"))
}

/// An array of embedded items.
pub fn array(v: &Value) -> Decoded<&Vec<Value>> {
    v.as_array().ok_or(Problem::Expected("an array"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn object_ids_canonical_and_bare() {
        let id = "5F1D7A2B3C4D5E6F7A8B9C0D";
        assert_eq!(oid(&json!({"$oid": id})).unwrap(), id.to_ascii_lowercase());
        assert_eq!(oid(&json!(id)).unwrap(), id.to_ascii_lowercase());
        assert!(oid(&json!({"$oid": "xyz"})).is_err());
        assert!(oid(&json!(12)).is_err());
    }

    #[test]
    fn dates_in_every_form() {
        let iso = datetime(&json!({"$date": "2021-03-04T05:06:07.089Z"})).unwrap();
        let long = datetime(&json!({"$date": {"$numberLong": "1614834367089"}})).unwrap();
        let relaxed = datetime(&json!({"$date": 1614834367089_i64})).unwrap();
        let offset = datetime(&json!({"$date": "2021-03-04T05:06:07.089+0000"})).unwrap();
        assert_eq!(iso, long);
        assert_eq!(iso, relaxed);
        assert_eq!(iso, offset);
        assert_eq!(date(&json!("1980-02-29")).unwrap().date.to_string(), "1980-02-29");
        assert_eq!(date(&json!({"$date": "1980-02-29T00:00:00Z"})).unwrap().date.to_string(), "1980-02-29");
        assert!(datetime(&json!({"$date": "yesterday"})).is_err());
    }

    #[test]
    fn a_date_is_the_calendar_date_written_at_its_offset() {
        let d = date(&json!({"$date": "1985-03-04T00:00:00+05:30"})).unwrap();
        assert_eq!((d.date.to_string(), d.time_dropped), ("1985-03-04".to_owned(), false));
        let d = date(&json!({"$date": "1985-03-04T23:30:00-08:00"})).unwrap();
        assert_eq!((d.date.to_string(), d.time_dropped), ("1985-03-04".to_owned(), true));
        // Milliseconds carry no offset: UTC.
        let d = date(&json!({"$date": {"$numberLong": "479174400000"}})).unwrap();
        assert_eq!(d.date.to_string(), "1985-03-09");
    }

    #[test]
    fn instants_outside_1900_to_2099_are_refused() {
        for bad in ["9999-12-31T00:00:00Z", "1899-12-31T23:59:59Z", "2100-01-01T00:00:00Z"] {
            assert_eq!(datetime(&json!({"$date": bad})), Err(Problem::Rule(RANGE_RULE.into())), "{bad}");
        }
        assert!(datetime(&json!({"$date": {"$numberLong": "253402300800000"}})).is_err(), "year 10000");
        assert!(date(&json!("2100-01-01")).is_err());
        assert!(datetime(&json!({"$date": "2099-12-31T23:59:59Z"})).is_ok());
        assert!(datetime(&json!({"$date": "1900-01-01T00:00:00Z"})).is_ok());
    }

    #[test]
    fn decimals_keep_their_text_and_count_their_places() {
        assert_eq!(decimal(&json!({"$numberDecimal": "0.12345"})).unwrap().1, "0.12345");
        assert_eq!(decimal(&json!(72.5)).unwrap(), (72.5, "72.5".to_owned()));
        assert_eq!(fraction_digits("0.12345"), Some(5));
        assert_eq!(fraction_digits("72.50"), Some(1));
        assert_eq!(fraction_digits("170"), Some(0));
        assert_eq!(fraction_digits("1.5e-3"), Some(4));
        assert_eq!(fraction_digits("1.25e1"), Some(1));
        assert_eq!(fraction_digits("abc"), None);
    }

    #[test]
    fn numbers_canonical_and_relaxed() {
        assert_eq!(int(&json!({"$numberInt": "42"})).unwrap(), 42);
        assert_eq!(int(&json!({"$numberLong": "-7"})).unwrap(), -7);
        assert_eq!(int(&json!({"$numberDouble": "3.0"})).unwrap(), 3);
        assert_eq!(int(&json!(5)).unwrap(), 5);
        assert!(int(&json!({"$numberDouble": "3.5"})).is_err());
        assert_eq!(double(&json!({"$numberDouble": "72.5"})).unwrap(), 72.5);
        assert_eq!(double(&json!(1.5)).unwrap(), 1.5);
        assert!(double(&json!({"$numberDouble": "NaN"})).is_err());
        assert!(double(&json!({"$numberDouble": "Infinity"})).is_err());
    }

    #[test]
    fn binary_v2_v1_and_base64() {
        let v2 = binary(&json!({"$binary": {"base64": "aGVsbG8=", "subType": "00"}})).unwrap();
        let v1 = binary(&json!({"$binary": "aGVsbG8=", "$type": "00"})).unwrap();
        let plain = binary(&json!("aGVs\nbG8=")).unwrap();
        assert_eq!(v2, b"hello");
        assert_eq!(v1, b"hello");
        assert_eq!(plain, b"hello");
        assert!(binary(&json!("not base64!")).is_err());
    }
}
