//! How exported and listed events look outside the ledger: JSON items (API and NDJSON), CSV
//! rows, and FHIR R4 AuditEvent resources. Rendering only; no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use super::canonical::format_timestamp;
pub use super::fhir::FhirSource;
use super::store::LogRow;

fn ts(row: &LogRow) -> String {
    format_timestamp(&row.event.occurred_at).unwrap_or_else(|_| row.event.occurred_at.to_rfc3339())
}

/// The API form of one event, with its ledger position and hashes (base64): the serialized
/// [`LogRow`] (`LedgerEvent` in the OpenAPI document).
pub fn event_json(row: &LogRow) -> Value {
    // Every member is a string, number, boolean, null or array of strings: this cannot fail.
    serde_json::to_value(row).unwrap_or(Value::Null)
}

pub const CSV_HEADER: &str = "ledger_id,seq,format_version,event_id,occurred_at,actor_id,actor_role,action,\
resource_type,resource_ids,patient_id,patient_ids,outcome,reason,request_id,correlation_id,client_ip,user_agent,\
break_glass,imported,leaf_hash,chain_hash\n";

/// The CSV columns whose text comes from people (a break-glass reason, a User-Agent header, the
/// client's own request id):
/// the only ones where a value a spreadsheet would run as a formula is defused. Every other
/// column is an id, a time, a number, a closed label or a hash, written exactly as in NDJSON
/// (docs/ledger-format.md, "CSV", lists every column).
pub const CSV_FREE_TEXT: [&str; 3] = ["reason", "correlation_id", "user_agent"];

/// Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection"), plus
/// the apostrophe itself, so that the defusing apostrophe is always one to strip: a free-text
/// cell starting with `'` had one added.
const FORMULA_START: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// One CSV cell. `None` (JSON null) is an empty unquoted cell, and an empty string is `""`,
/// as PostgreSQL's `COPY … CSV` writes them; RFC 4180 quoting otherwise. `free_text` adds the
/// defusing apostrophe.
fn csv_field(out: &mut String, value: Option<&str>, free_text: bool) {
    let Some(s) = value else { return };
    let defuse = free_text && s.starts_with(FORMULA_START);
    if defuse || s.is_empty() || s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if defuse {
            out.push('\'');
        }
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// One CSV line (with the newline) in [`CSV_HEADER`] order: each cell the NDJSON value
/// ([`event_json`]) as text — strings as they are, numbers and booleans as JSON writes them,
/// `resource_ids` as its JSON array — so the hash chain recomputes from the CSV alone.
pub fn csv_row(row: &LogRow) -> String {
    let e = &row.event;
    let id = |u: Option<uuid::Uuid>| u.map(|u| u.to_string());
    let ids = serde_json::Value::from(e.resource_ids.clone()).to_string();
    let patients = serde_json::Value::from(e.patient_ids.iter().map(|p| p.to_string()).collect::<Vec<_>>()).to_string();
    let fields: [(Option<String>, bool); 22] = [
        (Some(row.ledger_id.to_string()), false),
        (Some(row.seq.to_string()), false),
        (Some(e.format_version.to_string()), false),
        (Some(e.event_id.to_string()), false),
        (Some(ts(row)), false),
        (id(e.actor_id), false),
        (e.actor_role.clone(), false),
        (Some(e.action.clone()), false),
        (Some(e.resource_type.clone()), false),
        (Some(ids), false),
        (id(e.patient_id), false),
        (Some(patients), false),
        (Some(e.outcome.clone()), false),
        (e.reason.clone(), true),
        (id(e.request_id), false),
        (e.correlation_id.clone(), true),
        (e.client_ip.clone(), false),
        (e.user_agent.clone(), true),
        (Some(e.break_glass.to_string()), false),
        (Some(e.imported.to_string()), false),
        (Some(B64.encode(&row.leaf_hash)), false),
        (Some(B64.encode(&row.chain_hash)), false),
    ];
    let mut out = String::with_capacity(400);
    for (i, (value, free_text)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, value.as_deref(), *free_text);
    }
    out.push('\n');
    out
}

/// A FHIR R4 AuditEvent (IHE BALP) for one ledger entry: [`super::fhir::audit_event`].
pub fn fhir_audit_event(row: &LogRow, source: &super::fhir::FhirSource) -> Value {
    super::fhir::audit_event(row, source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::store::EventFields;

    fn row(action: &str, break_glass: bool, user_agent: &str) -> LogRow {
        LogRow {
            ledger_id: uuid::Uuid::nil(),
            seq: 7,
            event: EventFields {
                event_id: uuid::Uuid::nil(),
                occurred_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_001).unwrap(),
                org_id: None,
                actor_id: Some(uuid::Uuid::max()),
                actor_role: Some("clinician".into()),
                action: action.into(),
                resource_type: "prescription".into(),
                resource_ids: vec!["a".into(), "b".into()],
                patient_id: Some(uuid::Uuid::max()),
                outcome: "denied".into(),
                request_id: None,
                client_ip: Some("10.0.0.1".into()),
                user_agent: Some(user_agent.into()),
                reason: break_glass.then(|| "unconscious".into()),
                break_glass,
                imported: false,
                correlation_id: None,
                patient_ids: vec![],
                format_version: 2,
            },
            leaf_hash: vec![0; 32],
            chain_hash: vec![1; 32],
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas_in_free_text_only() {
        let line = csv_row(&row("read", false, "=HYPERLINK(\"x\"), ok"));
        assert!(line.contains(",\"'=HYPERLINK(\"\"x\"\"), ok\","), "{line}");
        assert!(line.starts_with("00000000-0000-0000-0000-000000000000,7,2,"), "{line}");
        // resource_ids is its JSON array (quoted: it holds quotes), hashes are never touched.
        assert!(line.contains(r#","[""a"",""b""]","#), "{line}");
        let mut r = row("read", false, "'quoted");
        r.leaf_hash = vec![0xfb; 32]; // base64 "+/v7…": a formula start in a hash column
        r.event.actor_role = None;
        r.event.reason = Some(String::new());
        let line = csv_row(&r);
        assert!(line.contains(",\"''quoted\","), "a leading apostrophe is itself defused: {line}");
        assert!(line.contains(",+/v7"), "hashes exactly as in NDJSON: {line}");
        let prefix = format!("{},{},{}", uuid::Uuid::max(), "", "read,prescription,");
        assert!(line.contains(&prefix), "null actor_role is an empty cell: {line}");
        assert!(line.contains(&format!("{},[],denied,\"\",", uuid::Uuid::max())), "an empty reason is \"\": {line}");
        let plain = csv_row(&row("read", false, "curl/8.0 -v"));
        assert!(plain.contains(",curl/8.0 -v,"), "{plain}");
    }

    #[test]
    fn fhir_maps_actions_outcomes_and_break_glass() {
        let src = crate::audit::fhir::FhirSource::new("custos.test/ledger");
        let ev = fhir_audit_event(&row("read", true, "ua"), &src);
        assert_eq!(ev["resourceType"], "AuditEvent");
        assert_eq!(ev["type"]["code"], "rest");
        assert_eq!(ev["subtype"][0]["code"], "read");
        assert_eq!(ev["action"], "R");
        assert_eq!(ev["outcome"], "4");
        assert!(ev.get("meta").is_none(), "a refusal claims no BALP profile (they fix outcome 0)");
        assert_eq!(ev["recorded"], "2023-11-14T22:13:20.000001Z");
        assert_eq!(ev["agent"][0]["purposeOfUse"][0]["coding"][0]["code"], "BTG");
        assert_eq!(ev["agent"][0]["who"]["identifier"]["system"], "https://custos.test/ledger/user");
        assert_eq!(ev["entity"][0]["what"]["reference"], format!("Patient/{}", uuid::Uuid::max()));
        assert_eq!(ev["entity"][0]["role"]["code"], "1");
        assert_eq!(ev["source"]["observer"]["identifier"]["value"], "https://custos.test/ledger");
        let login = fhir_audit_event(&row("login", false, "ua"), &src);
        assert_eq!((login["type"]["code"].as_str(), login["action"].as_str()), (Some("110114"), Some("E")));
        assert_eq!(login["subtype"][0]["code"], "110122");
        assert_eq!(fhir_audit_event(&row("logout", false, "ua"), &src)["subtype"][0]["code"], "110123");
        assert!(login["agent"][0].get("purposeOfUse").is_none());
        let mut ok = row("create", false, "ua");
        ok.event.outcome = "success".into();
        ok.event.resource_ids.truncate(1);
        let create = fhir_audit_event(&ok, &src);
        assert_eq!(create["action"], "C");
        assert_eq!(create["meta"]["profile"][0], format!("{}PatientCreate", crate::audit::fhir::PROFILE_BASE));
    }

    #[test]
    fn fhir_bootstrap_names_the_admin_as_a_user() {
        let src = crate::audit::fhir::FhirSource::new("custos.test/ledger");
        let mut r = row("admin", false, "ua");
        r.event.resource_type = "organization".into();
        r.event.resource_ids = vec!["org".into(), "admin".into()];
        r.event.reason = Some("bootstrap: organization and first admin created".into());
        let ev = fhir_audit_event(&r, &src);
        let systems: Vec<&str> = ev["entity"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["what"]["identifier"]["system"].as_str())
            .collect();
        assert_eq!(systems, ["https://custos.test/ledger/organization", "https://custos.test/ledger/user"]);
    }
}
