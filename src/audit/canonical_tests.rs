//! Tests for `canonical`: RFC 8785 examples and Appendix B numbers, the
//! cyberphone/json-canonicalization test data, and the event format.

use super::*;
use chrono::TimeZone;
use serde_json::json;

fn jcs(input: &str) -> String {
    let value: Value = serde_json::from_str(input).unwrap();
    String::from_utf8(canonicalize(&value).unwrap()).unwrap()
}

#[test]
#[allow(clippy::excessive_precision)] // the RFC's literal digits, on purpose
fn rfc8785_composite_example() {
    // RFC 8785 §3.2.2 (input) and §3.2.3-adjacent output, numbers included.
    let input = r#"{
      "numbers": [],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let mut value: Value = serde_json::from_str(input).unwrap();
    // Rust's float literal parser is correctly rounded; serde_json's default
    // one is off by an ulp on 333333333.33333329 (see `format_f64`).
    value["numbers"] = json!([333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]);
    let want = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
    assert_eq!(String::from_utf8(canonicalize(&value).unwrap()).unwrap(), want);
}

#[test]
fn rfc8785_property_sorting_example() {
    // RFC 8785 §3.2.3: the emoji (UTF-16 D83D DE00) sorts before U+FB33.
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
                \"\u{1f600}\":\"Emoji: Grinning Face\",\
                \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(jcs(input), want);
}

#[test]
fn rfc8785_appendix_b_numbers() {
    let vectors: [(u64, &str); 24] = [
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for (bits, want) in vectors {
        assert_eq!(format_f64(f64::from_bits(bits)).unwrap(), want, "{bits:016x}");
    }
    assert_eq!(format_f64(f64::NAN), Err(CanonicalError::NonFinite));
    assert_eq!(format_f64(f64::INFINITY), Err(CanonicalError::NonFinite));
}

#[test]
fn cyberphone_testdata() {
    // cyberphone/json-canonicalization testdata/{input,output}/*.json.
    let cases = [
        (
            "{\n  \"1\": {\"f\": {\"f\": \"hi\",\"F\": 5} ,\"\\n\": 56.0},\n  \"10\": { },\n  \"\": \"empty\",\n  \"a\": { },\n  \"111\": [ { } ],\n  \"A\": { }\n}",
            "{\"\":\"empty\",\"1\":{\"\\n\":56,\"f\":{\"F\":5,\"f\":\"hi\"}},\"10\":{},\"111\":[{}],\"A\":{},\"a\":{}}",
        ),
        (
            "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"1\": \"One\",\n  \"\\u0080\": \"Control\\u007f\",\n  \"\\ud83d\\ude02\": \"Smiley\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"</script>\": \"Browser Challenge\"\n}\n",
            "{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u{80}\":\"Control\u{7f}\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}",
        ),
        (
            "{\n  \"peach\": \"This sorting order\",\n  \"péché\": \"is wrong according to French\",\n  \"pêche\": \"but canonicalization MUST\",\n  \"sin\":   \"ingnore locale\"\n}\n",
            "{\"peach\":\"This sorting order\",\"péché\":\"is wrong according to French\",\"pêche\":\"but canonicalization MUST\",\"sin\":\"ingnore locale\"}",
        ),
        ("{\n  \"Unnormalized Unicode\":\"\\u1e0d\\u0307\"\n}\n", "{\"Unnormalized Unicode\":\"\u{1e0d}\u{307}\"}"),
        (
            "[\n  56,\n  {\n    \"d\": true,\n    \"10\": null,\n    \"1\": [ ]\n  }\n]",
            "[56,{\"1\":[],\"10\":null,\"d\":true}]",
        ),
        ("    \"this is a test string 1235\"", "\"this is a test string 1235\""),
    ];
    for (input, want) in cases {
        assert_eq!(jcs(input), want);
    }
}

#[test]
fn string_escapes() {
    let all_controls: String = (0u8..0x20).map(char::from).collect();
    let got = String::from_utf8(canonicalize(&json!(all_controls)).unwrap()).unwrap();
    let want = "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\
                \\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\
                \\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"";
    assert_eq!(got, want);
    // No escaping of '/', DEL, U+2028 or non-ASCII.
    let got = canonicalize(&json!("a/b\u{7f}\u{2028}é\"\\")).unwrap();
    assert_eq!(got, "\"a/b\u{7f}\u{2028}é\\\"\\\\\"".as_bytes());
}

#[test]
fn integer_limits() {
    assert_eq!(jcs("[9007199254740991,-9007199254740991,0,-0]"), "[9007199254740991,-9007199254740991,0,0]");
    for big in ["9007199254740992", "-9007199254740992", "18446744073709551615"] {
        let value: Value = serde_json::from_str(big).unwrap();
        assert!(matches!(canonicalize(&value), Err(CanonicalError::IntegerOutOfRange(_))));
    }
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

fn sample_event() -> ParsedEvent {
    ParsedEvent {
        ledger_id: uuid("0190f1c2-3b4a-7c5d-8e6f-0123456789ab"),
        index: 42,
        event: EventFields {
            format_version: 1,
            event_id: uuid("0190F1C2-3B4A-7C5D-8E6F-0123456789AC"),
            occurred_at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::microseconds(123_456),
            org_id: None,
            actor_id: Some(uuid("0190f1c2-3b4a-7c5d-8e6f-0123456789ad")),
            actor_role: Some("clinician".into()),
            action: "read".into(),
            resource_type: "medical_record".into(),
            resource_ids: vec!["r1".into(), "r\u{e9}2".into()],
            patient_id: Some(uuid("0190f1c2-3b4a-7c5d-8e6f-0123456789ae")),
            outcome: "success".into(),
            reason: None,
            request_id: None,
            correlation_id: None,
            patient_ids: vec![],
            client_ip: Some("192.0.2.1".into()),
            user_agent: Some("UA \"quoted\"\t".into()),
            break_glass: false,
            imported: true,
        },
    }
}

/// The generic serde form of an event in its hashed shape: the event's members, its place,
/// the version as `v`, no `org_id`.
fn generic_form(p: &ParsedEvent) -> Value {
    let mut value = serde_json::to_value(&p.event).unwrap();
    let members = value.as_object_mut().unwrap();
    let v = members.remove("format_version").unwrap();
    members.insert("v".into(), v);
    members.insert("ledger_id".into(), json!(p.ledger_id));
    members.insert("index".into(), json!(p.index));
    value
}

const SAMPLE_BYTES: &str = concat!(
    r#"{"action":"read","actor_id":"0190f1c2-3b4a-7c5d-8e6f-0123456789ad","actor_role":"clinician","#,
    r#""break_glass":false,"client_ip":"192.0.2.1","event_id":"0190f1c2-3b4a-7c5d-8e6f-0123456789ac","#,
    r#""imported":true,"index":42,"ledger_id":"0190f1c2-3b4a-7c5d-8e6f-0123456789ab","#,
    r#""occurred_at":"2025-01-02T03:04:05.123456Z","outcome":"success","#,
    r#""patient_id":"0190f1c2-3b4a-7c5d-8e6f-0123456789ae","reason":null,"request_id":null,"#,
    r#""resource_ids":["r1","ré2"],"resource_type":"medical_record","#,
    r#""user_agent":"UA \"quoted\"\t","v":1}"#
);

#[test]
fn event_canonical_bytes_are_exact() {
    let event = sample_event();
    let bytes = event.canonical().canonical_bytes().unwrap();
    assert_eq!(std::str::from_utf8(&bytes).unwrap(), SAMPLE_BYTES);
    assert_eq!(event.canonical().leaf_hash().unwrap(), merkle::leaf_hash(SAMPLE_BYTES.as_bytes()));
    assert_eq!(CanonicalEvent::from_canonical_bytes(&bytes).unwrap(), event);
}

const SAMPLE_V2_BYTES: &str = concat!(
    r#"{"action":"read","actor_id":"0190f1c2-3b4a-7c5d-8e6f-0123456789ad","actor_role":"clinician","#,
    r#""break_glass":false,"client_ip":"192.0.2.1","correlation_id":"client-42","#,
    r#""event_id":"0190f1c2-3b4a-7c5d-8e6f-0123456789ac","#,
    r#""imported":true,"index":42,"ledger_id":"0190f1c2-3b4a-7c5d-8e6f-0123456789ab","#,
    r#""occurred_at":"2025-01-02T03:04:05.123456Z","outcome":"success","#,
    r#""patient_id":"0190f1c2-3b4a-7c5d-8e6f-0123456789ae","#,
    r#""patient_ids":["00000000-0000-0000-0000-000000000001","0190f1c2-3b4a-7c5d-8e6f-0123456789ae"],"#,
    r#""reason":null,"request_id":null,"#,
    r#""resource_ids":["r1","ré2"],"resource_type":"medical_record","#,
    r#""user_agent":"UA \"quoted\"\t","v":2}"#
);

fn sample_v2() -> ParsedEvent {
    let mut p = sample_event();
    p.event.format_version = 2;
    p.event.correlation_id = Some("client-42".into());
    p.event.patient_ids =
        vec![uuid("00000000-0000-0000-0000-000000000001"), uuid("0190f1c2-3b4a-7c5d-8e6f-0123456789ae")];
    p
}

#[test]
fn version_2_adds_correlation_id_and_patient_ids_and_version_1_keeps_its_bytes() {
    let v2 = sample_v2();
    assert_eq!(std::str::from_utf8(&v2.canonical().canonical_bytes().unwrap()).unwrap(), SAMPLE_V2_BYTES);
    assert_eq!(CanonicalEvent::from_canonical_bytes(SAMPLE_V2_BYTES.as_bytes()).unwrap(), v2);
    // Version 1 bytes never carry the new members, and version 2 bytes never lack them.
    assert_eq!(std::str::from_utf8(&sample_event().canonical().canonical_bytes().unwrap()).unwrap(), SAMPLE_BYTES);
    let v1_with_members = SAMPLE_V2_BYTES.replace(r#""v":2"#, r#""v":1"#);
    assert!(CanonicalEvent::from_canonical_bytes(v1_with_members.as_bytes()).is_err());
    let v2_without = SAMPLE_BYTES.replace(r#""v":1"#, r#""v":2"#);
    assert!(CanonicalEvent::from_canonical_bytes(v2_without.as_bytes()).is_err());
    let mut v3 = sample_v2();
    v3.event.format_version = 3;
    assert!(matches!(v3.canonical().canonical_bytes(), Err(CanonicalError::UnsupportedVersion(3))));
}

#[test]
fn direct_writer_matches_generic_jcs_for_version_2() {
    let mut empty = sample_v2();
    (empty.event.correlation_id, empty.event.patient_ids) = (None, vec![]);
    for event in [sample_v2(), empty] {
        let generic = canonicalize(&generic_form(&event)).unwrap();
        assert_eq!(event.canonical().canonical_bytes().unwrap(), generic);
    }
}

#[test]
fn direct_writer_matches_generic_jcs() {
    // The hand-ordered writer must equal JCS over the serde form, for events
    // with every optional field both present and absent.
    let full = sample_event();
    let mut empty = sample_event();
    let e = &mut empty.event;
    (e.actor_id, e.actor_role, e.patient_id) = (None, None, None);
    (e.client_ip, e.user_agent) = (None, None);
    (e.reason, e.request_id) = (Some("\u{1}\u{1f600}".into()), Some(Uuid::nil()));
    (e.resource_ids, e.break_glass) = (vec![], true);
    for event in [full, empty] {
        // Version 1 has no `correlation_id` and no `patient_ids` member.
        let mut value = generic_form(&event);
        let members = value.as_object_mut().unwrap();
        members.remove("correlation_id");
        members.remove("patient_ids");
        let generic = canonicalize(&value).unwrap();
        assert_eq!(event.canonical().canonical_bytes().unwrap(), generic);
        assert_eq!(CanonicalEvent::from_canonical_bytes(&generic).unwrap(), event);
    }
}

#[test]
fn event_whole_seconds_keep_six_digits() {
    let mut event = sample_event();
    event.event.occurred_at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
    let text = String::from_utf8(event.canonical().canonical_bytes().unwrap()).unwrap();
    assert!(text.contains(r#""occurred_at":"2025-01-02T03:04:05.000000Z""#));
}

#[test]
fn timestamps_match_chrono_formatting() {
    let base = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 58).unwrap();
    for micros in [0i64, 1, 999_999, 1_000_000, 86_400_000_000 * 400 + 7] {
        let t = base + chrono::Duration::microseconds(micros);
        let want = t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        assert_eq!(format_timestamp(&t).unwrap(), want);
    }
    let y0 = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(format_timestamp(&y0).unwrap(), "0000-01-01T00:00:00.000000Z");
    let y10k = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
    assert!(format_timestamp(&y10k).is_err());
    assert!(format_timestamp(&(y0 - chrono::Duration::days(1))).is_err());
}

#[test]
fn event_rejects_what_cannot_round_trip() {
    let mut event = sample_event();
    event.event.occurred_at += chrono::Duration::nanoseconds(1);
    assert!(matches!(event.canonical().canonical_bytes(), Err(CanonicalError::InvalidTimestamp(_))));
    let mut event = sample_event();
    event.event.format_version = 3;
    assert_eq!(event.canonical().canonical_bytes(), Err(CanonicalError::UnsupportedVersion(3)));

    // Valid JSON for the same event, but not the canonical bytes.
    let spaced = SAMPLE_BYTES.replace(",\"v\":1}", ", \"v\":1}");
    assert_eq!(CanonicalEvent::from_canonical_bytes(spaced.as_bytes()), Err(CanonicalError::NotCanonical));
    let bad_time = SAMPLE_BYTES.replace("05.123456Z", "05.123456+00:00");
    assert!(CanonicalEvent::from_canonical_bytes(bad_time.as_bytes()).is_err());
    let short_time = SAMPLE_BYTES.replace("05.123456Z", "05.123Z");
    assert!(CanonicalEvent::from_canonical_bytes(short_time.as_bytes()).is_err());
    let extra = SAMPLE_BYTES.replace("\"v\":1}", "\"v\":1,\"x\":0}");
    assert!(CanonicalEvent::from_canonical_bytes(extra.as_bytes()).is_err());
    let missing = SAMPLE_BYTES.replace("\"reason\":null,", "");
    assert!(CanonicalEvent::from_canonical_bytes(missing.as_bytes()).is_err());
    // The stored name of the version is not a member of the hashed form.
    let renamed = SAMPLE_BYTES.replace("\"v\":1}", "\"format_version\":1}");
    assert!(CanonicalEvent::from_canonical_bytes(renamed.as_bytes()).is_err());
}
