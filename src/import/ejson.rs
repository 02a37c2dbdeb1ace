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
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
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

/// A UTC instant.
pub fn datetime(v: &Value) -> Decoded<DateTime<Utc>> {
    const EXPECTED: Problem = Problem::Expected("a date");
    let inner = wrapper(v, "$date").unwrap_or(v);
    match inner {
        Value::String(s) => parse_iso(s).ok_or(EXPECTED),
        Value::Number(_) => int(inner).ok().and_then(millis).ok_or(EXPECTED),
        Value::Object(_) => wrapper(inner, "$numberLong")
            .and_then(Value::as_str)
            .and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(millis)
            .ok_or(EXPECTED),
        _ => Err(EXPECTED),
    }
}

/// A calendar date: the UTC date of a `$date`, or a `YYYY-MM-DD` string.
pub fn date(v: &Value) -> Decoded<NaiveDate> {
    if let Some(s) = v.as_str()
        && let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
    {
        return Ok(d);
    }
    datetime(v).map(|t| t.date_naive())
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // mongoexport of old servers writes "+0000" offsets without the colon.
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok().map(|t| t.with_timezone(&Utc))
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
        assert_eq!(date(&json!("1980-02-29")).unwrap().to_string(), "1980-02-29");
        assert_eq!(date(&json!({"$date": "1980-02-29T00:00:00Z"})).unwrap().to_string(), "1980-02-29");
        assert!(datetime(&json!({"$date": "yesterday"})).is_err());
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
