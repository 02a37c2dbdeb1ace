//! Canonical event bytes: RFC 8785 JSON Canonicalization Scheme (JCS) over a
//! `serde_json::Value`, and the versioned `CanonicalEvent` whose JCS bytes are
//! the Merkle leaf input `SHA-256(0x00 ‖ canonical_bytes)`.
//!
//! A third party re-implements this from docs/ledger-format.md, so the output
//! must be byte-for-byte what any conforming JCS library produces: keys sorted
//! by UTF-16 code units, no whitespace, ECMAScript number text, and only the
//! mandatory string escapes.

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use uuid::Uuid;

// `super::` so the module works unchanged under `crate::audit` in the main crate.
use super::merkle::{self, Hash};
use super::store::EventFields;

/// The event format version this code writes. Version 1 (without `correlation_id` and
/// `patient_ids`) is still read and verified: entries keep the form they were hashed in.
pub const EVENT_FORMAT_VERSION: u32 = 2;

/// The first format version with `correlation_id` and `patient_ids`.
pub const V2: u32 = 2;

/// Largest integer a JSON number token may carry: JCS numbers are IEEE doubles,
/// and beyond ±(2^53 − 1) distinct integers collapse (I-JSON, RFC 7493 §2.2).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("integer {0} is outside ±(2^53 - 1) and has no exact JCS form")]
    IntegerOutOfRange(String),
    #[error("NaN and infinities have no JSON form")]
    NonFinite,
    #[error("unsupported event format version {0}")]
    UnsupportedVersion(u32),
    #[error("invalid occurred_at: {0}")]
    InvalidTimestamp(&'static str),
    #[error("JSON error: {0}")]
    Json(String),
    #[error("input is valid JSON but not in canonical form")]
    NotCanonical,
}

type Result<T> = std::result::Result<T, CanonicalError>;

/// JCS bytes of `value`.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Appends the JCS form of `value` to `out` (reuse one buffer in hot loops).
/// Duplicate object keys cannot be represented in a `Value`; rejecting them in
/// untrusted input is the parser's job.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out)?,
    }
    Ok(())
}

/// RFC 8785 §3.2.3: order by UTF-16 code units. serde_json's own order (UTF-8
/// bytes = code points) differs once keys mix U+E000..U+FFFF with astral chars.
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<()> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| utf16_cmp(a.0, b.0));
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_canonical(value, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// ECMAScript `JSON.stringify` string escaping (RFC 8785 §3.2.2.2): `"` and
/// `\`, the five short forms, `\u00xx` (lowercase) for other C0 controls; every
/// other character, DEL and U+2028 included, is written as raw UTF-8.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        // Copy the unescaped run in one go; UTF-8 continuation bytes are never
        // below 0x80, so splitting at an ASCII byte is always on a char boundary.
        out.extend_from_slice(&bytes[run_start..i]);
        run_start = i + 1;
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<()> {
    let text = if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(CanonicalError::IntegerOutOfRange(u.to_string()));
        }
        u.to_string()
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(CanonicalError::IntegerOutOfRange(i.to_string()));
        }
        i.to_string()
    } else {
        format_f64(n.as_f64().ok_or(CanonicalError::NonFinite)?)?
    };
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// Splits Rust's `d.ddde<exp>` into (digits without trailing zeros, exp).
fn split_sci(sci: &str) -> Result<(String, i32)> {
    let (mantissa, exp) = sci.split_once('e').ok_or(CanonicalError::NonFinite)?;
    let exp = exp.parse().map_err(|_| CanonicalError::NonFinite)?;
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    Ok((digits, exp))
}

/// ECMAScript Number::toString (ECMA-262 §6.1.6.1.20), as JCS requires: the
/// fewest digits that round-trip, closest to the value, even on a tie.
///
/// Note: serde_json's default float *parser* can be off by one ulp (its
/// `float_roundtrip` feature fixes that), one more reason events carry no floats.
pub fn format_f64(x: f64) -> Result<String> {
    if !x.is_finite() {
        return Err(CanonicalError::NonFinite);
    }
    if x == 0.0 {
        return Ok("0".to_owned()); // -0 too
    }
    let abs = x.abs();
    // `{:e}` gives the shortest round-trip digit count k, but on an exact tie
    // between two k-digit candidates it rounds up; `{:.*e}` rounds the exact
    // binary value half-to-even, so prefer it whenever it also round-trips.
    let (mut digits, mut exp) = split_sci(&format!("{abs:e}"))?;
    let exact = format!("{:.*e}", digits.len() - 1, abs);
    if exact.parse::<f64>() == Ok(abs) {
        (digits, exp) = split_sci(&exact)?;
    }
    // Value = 0.d1d2…dk × 10^n in ECMA-262 terms.
    let (k, n) = (digits.len() as i32, exp + 1);
    let mut s = String::with_capacity(32);
    if x < 0.0 {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        s.push_str(int);
        s.push('.');
        s.push_str(frac);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-n) as usize));
        s.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        s.push_str(first);
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        s.push('e');
        s.push(if n > 0 { '+' } else { '-' });
        s.push_str(&(n - 1).unsigned_abs().to_string());
    }
    Ok(s)
}

/// `occurred_at` text: RFC 3339 UTC, exactly 6 fractional digits, `Z`
/// (`2025-01-02T03:04:05.123456Z`). Only instants PostgreSQL stores exactly are
/// accepted: microsecond precision, no leap second, 4-digit year.
pub fn format_timestamp(t: &DateTime<Utc>) -> Result<String> {
    let mut out = Vec::with_capacity(27);
    write_timestamp(t, &mut out)?;
    Ok(out.into_iter().map(char::from).collect()) // all ASCII
}

/// Fixed-width decimal, zero-padded (`width` ≤ 10).
fn push_digits(out: &mut Vec<u8>, mut value: u32, width: usize) {
    let mut buf = [b'0'; 10];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// Hand-written rather than chrono's `format` (a parsed format string per
/// call): this runs once per event in the sequencer and the verifier.
fn write_timestamp(t: &DateTime<Utc>, out: &mut Vec<u8>) -> Result<()> {
    let year = u32::try_from(t.year())
        .ok()
        .filter(|y| *y <= 9999)
        .ok_or(CanonicalError::InvalidTimestamp("year outside 0000..=9999"))?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return Err(CanonicalError::InvalidTimestamp("leap second"));
    }
    if !nanos.is_multiple_of(1_000) {
        return Err(CanonicalError::InvalidTimestamp("finer than a microsecond (the database would round it)"));
    }
    push_digits(out, year, 4);
    for (sep, value) in [(b'-', t.month()), (b'-', t.day()), (b'T', t.hour())] {
        out.push(sep);
        push_digits(out, value, 2);
    }
    for (sep, value) in [(b':', t.minute()), (b':', t.second())] {
        out.push(sep);
        push_digits(out, value, 2);
    }
    out.push(b'.');
    push_digits(out, nanos / 1_000, 6);
    out.push(b'Z');
    Ok(())
}

/// `occurred_at` read from canonical bytes.
pub(super) mod micros {
    use super::*;
    use serde::de::Error as _;

    /// Accepts only the exact form `format_timestamp` writes.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        let t = DateTime::parse_from_rfc3339(&text).map_err(D::Error::custom)?.with_timezone(&Utc);
        match format_timestamp(&t) {
            Ok(canonical) if canonical == text => Ok(t),
            _ => Err(D::Error::custom("occurred_at must be RFC 3339 UTC with 6 fractional digits and Z")),
        }
    }
}

/// The hashed form of one audit event (format version 1 or 2): the stored event
/// ([`EventFields`], the one event struct) at its place in a ledger, borrowed. Every field of
/// the version is always present; absent values are JSON `null`, never omitted, so the field
/// set itself is fixed by the version. Version 2 adds `correlation_id` and `patient_ids`; a
/// version-1 event has neither member. The event's `format_version` is the member `v`; its
/// `org_id` is not a member (the `ledger_id` is).
#[derive(Debug, Clone, Copy)]
pub struct CanonicalEvent<'a> {
    pub ledger_id: Uuid,
    /// 0-based leaf index in the ledger (`seq`); binds the event to its place.
    pub index: u64,
    pub event: &'a EventFields,
}

/// An event read back from canonical bytes ([`CanonicalEvent::from_canonical_bytes`]): its
/// place and the event (`org_id` unknown: not a member).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ParsedEvent {
    pub ledger_id: Uuid,
    pub index: u64,
    #[serde(flatten)]
    pub event: EventFields,
}

impl ParsedEvent {
    pub fn canonical(&self) -> CanonicalEvent<'_> {
        self.event.canonical(self.ledger_id, self.index)
    }
}

impl CanonicalEvent<'_> {
    /// JCS bytes of the event (UUIDs as lowercase hyphenated strings).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(640);
        self.write_canonical(&mut out)?;
        Ok(out)
    }

    /// Appends the JCS bytes to `out`. Written field by field rather than via a
    /// `Value` (no map, no per-field allocation): the sequencer and the offline
    /// verifier run this per event. The keys below are ASCII, so byte order is
    /// UTF-16 order; a test pins the output to the generic [`canonicalize`].
    pub fn write_canonical(&self, out: &mut Vec<u8>) -> Result<()> {
        let e = self.event;
        let v = u32::try_from(e.format_version).unwrap_or(0);
        if !(1..=EVENT_FORMAT_VERSION).contains(&v) {
            return Err(CanonicalError::UnsupportedVersion(v));
        }
        let v2 = v >= V2;
        if self.index > MAX_SAFE_INTEGER {
            return Err(CanonicalError::IntegerOutOfRange(self.index.to_string()));
        }
        let mut uuid_buf = Uuid::encode_buffer();
        let mut uuid = |out: &mut Vec<u8>, id: Option<&Uuid>| match id {
            Some(id) => write_string(id.hyphenated().encode_lower(&mut uuid_buf), out),
            None => out.extend_from_slice(b"null"),
        };
        let opt_str = |out: &mut Vec<u8>, s: Option<&String>| match s {
            Some(s) => write_string(s, out),
            None => out.extend_from_slice(b"null"),
        };
        let bool_text = |b: bool| if b { "true" } else { "false" };

        out.extend_from_slice(b"{\"action\":");
        write_string(&e.action, out);
        out.extend_from_slice(b",\"actor_id\":");
        uuid(out, e.actor_id.as_ref());
        out.extend_from_slice(b",\"actor_role\":");
        opt_str(out, e.actor_role.as_ref());
        out.extend_from_slice(b",\"break_glass\":");
        out.extend_from_slice(bool_text(e.break_glass).as_bytes());
        out.extend_from_slice(b",\"client_ip\":");
        opt_str(out, e.client_ip.as_ref());
        if v2 {
            out.extend_from_slice(b",\"correlation_id\":");
            opt_str(out, e.correlation_id.as_ref());
        }
        out.extend_from_slice(b",\"event_id\":");
        uuid(out, Some(&e.event_id));
        out.extend_from_slice(b",\"imported\":");
        out.extend_from_slice(bool_text(e.imported).as_bytes());
        out.extend_from_slice(b",\"index\":");
        out.extend_from_slice(self.index.to_string().as_bytes());
        out.extend_from_slice(b",\"ledger_id\":");
        uuid(out, Some(&self.ledger_id));
        out.extend_from_slice(b",\"occurred_at\":\"");
        write_timestamp(&e.occurred_at, out)?; // ASCII, nothing to escape
        out.push(b'"');
        out.extend_from_slice(b",\"outcome\":");
        write_string(&e.outcome, out);
        out.extend_from_slice(b",\"patient_id\":");
        uuid(out, e.patient_id.as_ref());
        if v2 {
            out.extend_from_slice(b",\"patient_ids\":[");
            for (i, id) in e.patient_ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                uuid(out, Some(id));
            }
            out.push(b']');
        }
        out.extend_from_slice(b",\"reason\":");
        opt_str(out, e.reason.as_ref());
        out.extend_from_slice(b",\"request_id\":");
        uuid(out, e.request_id.as_ref());
        out.extend_from_slice(b",\"resource_ids\":[");
        for (i, id) in e.resource_ids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(id, out);
        }
        out.extend_from_slice(b"],\"resource_type\":");
        write_string(&e.resource_type, out);
        out.extend_from_slice(b",\"user_agent\":");
        opt_str(out, e.user_agent.as_ref());
        out.extend_from_slice(b",\"v\":");
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'}');
        Ok(())
    }

    /// RFC 9162 leaf hash of the canonical bytes.
    pub fn leaf_hash(&self) -> Result<Hash> {
        Ok(merkle::leaf_hash(&self.canonical_bytes()?))
    }

    /// Parses bytes from an export and insists they are exactly canonical, so
    /// the bytes an auditor hashes are the bytes this event re-serialises to (a member too
    /// many, too few, or out of place is refused that way).
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<ParsedEvent> {
        let parsed: ParsedEvent = serde_json::from_slice(bytes).map_err(|e| CanonicalError::Json(e.to_string()))?;
        if parsed.canonical().canonical_bytes()? != bytes {
            return Err(CanonicalError::NotCanonical);
        }
        Ok(parsed)
    }
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
