//! `activity_logs.json`: the legacy app's access log. Each entry becomes an `audit_inbox`
//! event flagged `imported`, with its original timestamp, in file order, written after all
//! the data it can refer to (this collection is imported last). Field mapping: docs/import.md.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::collection::{Collection, Fail, Refs, Sealer, resolve};
use super::ejson;
use super::fields::{Obj, Tally};
use super::reject::Reason;
use super::rows::Rows;
use super::write::TableCounts;

const KNOWN: &[&str] =
    &["_id", "__v", "user", "action", "resourceType", "resourceId", "timestamp", "ipAddress", "userAgent", "success"];
const MAX_UA: usize = 512;

pub struct ActivityDoc {
    user: String,
    action: &'static str,
    legacy_action: String,
    resource: Option<(&'static str, &'static str, Option<String>)>,
    at: DateTime<Utc>,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    success: bool,
}

pub struct ActivityLogs;

/// Legacy action names → `audit_action`. Matching is on the lower-cased name's prefix, so
/// `view_record`, `viewPatient` and `view` all read as `read`.
fn map_action(a: &str) -> Option<&'static str> {
    const PREFIXES: &[(&str, &str)] = &[
        ("login_failed", "login_failed"),
        ("failed_login", "login_failed"),
        ("login", "login"),
        ("logout", "logout"),
        ("view", "read"),
        ("read", "read"),
        ("get", "read"),
        ("access", "read"),
        ("download", "read"),
        ("search", "read"),
        ("create", "create"),
        ("add", "create"),
        ("send", "create"),
        ("upload", "create"),
        ("prescribe", "create"),
        ("update", "update"),
        ("edit", "update"),
        ("modify", "update"),
        ("delete", "delete"),
        ("remove", "delete"),
        ("export", "export"),
    ];
    PREFIXES.iter().find(|(p, _)| a.starts_with(p)).map(|(_, m)| *m)
}

/// Legacy resource types → (`resource_type` recorded, collection its id lives in).
fn map_resource(t: &str) -> Option<(&'static str, &'static str)> {
    match t {
        "user" | "users" => Some(("user", "users")),
        "patient" | "patients" | "record" | "medical_record" => Some(("patient", "users")),
        "conversation" | "conversations" | "message" | "messages" => Some(("conversation", "conversations")),
        "prescription" | "prescriptions" => Some(("prescription", "prescriptions")),
        _ => None,
    }
}

/// The user agent as the audit inbox keeps it: control characters (C0, DEL, C1) and
/// bidirectional overrides — which could forge line breaks or reorder text where an auditor
/// reads the ledger — become U+FFFD; more than 512 characters are cut to 512. Each is
/// counted in the report.
fn user_agent(ua: &str, tally: &mut Tally) -> String {
    let mut out = String::with_capacity(ua.len().min(MAX_UA * 4));
    let mut replaced = false;
    for c in ua.chars().take(MAX_UA) {
        if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            out.push('\u{FFFD}');
            replaced = true;
        } else {
            out.push(c);
        }
    }
    if replaced {
        tally.normalized.note("userAgent", "control characters replaced by U+FFFD");
    }
    if ua.chars().nth(MAX_UA).is_some() {
        tally.normalized.note("userAgent", "cut to 512 characters");
    }
    out
}

impl Collection for ActivityLogs {
    const NAME: &'static str = "activity_logs";
    type Doc = ActivityDoc;

    fn parse(
        map: &Map<String, Value>,
        _: &str,
        _: &str,
        tally: &mut Tally,
        _: NaiveDate,
    ) -> Result<ActivityDoc, Reason> {
        let doc = Obj::new(map, String::new(), KNOWN, &mut tally.unknown);
        let user = doc.req("user", ejson::oid)?;
        let raw_action = doc.req("action", ejson::string)?.trim().to_ascii_lowercase();
        // The action name goes into the audit reason: only a plain identifier may (no PHI).
        let plain = !raw_action.is_empty()
            && raw_action.len() <= 64
            && raw_action.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b));
        let action = map_action(&raw_action).filter(|_| plain).ok_or_else(|| Reason::InvalidField {
            field: "action".into(),
            problem: "must be a known action (login, logout, view…, create…, update…, delete…, export…)".into(),
        })?;
        let resource = match doc.get("resourceType", ejson::string)? {
            Some(t) => {
                let (rt, coll) = map_resource(&t.trim().to_ascii_lowercase()).ok_or_else(|| Reason::InvalidField {
                    field: "resourceType".into(),
                    problem: "must be user, patient, conversation or prescription".into(),
                })?;
                Some((rt, coll, doc.get("resourceId", ejson::oid)?))
            }
            None => None,
        };
        let ip = match doc.get("ipAddress", ejson::string)? {
            Some(s) => {
                let ip = s.trim().parse::<IpAddr>().map_err(|_| Reason::InvalidField {
                    field: "ipAddress".into(),
                    problem: "must be an IPv4 or IPv6 address".into(),
                })?;
                tally.changed("ipAddress", "re-written in canonical form", s, &ip.to_string());
                Some(ip)
            }
            None => None,
        };
        let user_agent = doc.get("userAgent", ejson::string)?.map(|ua| user_agent(ua, tally));
        Ok(ActivityDoc {
            user,
            action,
            legacy_action: raw_action,
            resource,
            at: doc.req("timestamp", ejson::datetime)?,
            ip,
            user_agent,
            success: doc.get("success", ejson::boolean)?.unwrap_or(true),
        })
    }

    fn references(doc: &ActivityDoc, out: &mut Vec<(&'static str, String)>) {
        out.push(("users", doc.user.clone()));
        if let Some((_, coll, Some(id))) = &doc.resource {
            out.push((coll, id.clone()));
        }
    }

    fn expected(_: &ActivityDoc, out: &mut TableCounts) {
        *out.entry("audit_inbox").or_default() += 1;
    }

    fn sealed_probe(_: &ActivityDoc) -> Option<(&'static str, &'static str, Vec<u8>)> {
        None
    }

    fn build(doc: ActivityDoc, legacy_id: &str, refs: &Refs, _: &mut Sealer<'_>, rows: &mut Rows) -> Result<(), Fail> {
        let actor = resolve(refs, "users", &doc.user, "user")?;
        let (resource_type, resource_id, patient_id) = match &doc.resource {
            None => ("session", None, None),
            Some((rt, _, None)) => (*rt, None, None),
            Some((rt, coll, Some(id))) => {
                let r = resolve(refs, coll, id, "resourceId")?;
                (*rt, Some(r.new_id.to_string()), r.patient_id)
            }
        };
        let event_id = Uuid::now_v7();
        let a = &mut rows.audit;
        a.event_id.push(event_id);
        a.occurred_at.push(doc.at);
        a.actor_id.push(actor.new_id);
        a.actor_role.push(actor.role.clone().unwrap_or_default());
        a.action.push(doc.action.to_owned());
        a.resource_type.push(resource_type.to_owned());
        a.resource_id.push(resource_id);
        a.patient_id.push(patient_id);
        a.outcome.push(if doc.success { "success" } else { "denied" }.to_owned());
        a.client_ip.push(doc.ip.map(|ip| ip.to_string()));
        a.user_agent.push(doc.user_agent);
        a.reason.push(format!("imported legacy activity log entry (action {})", doc.legacy_action));
        rows.map(Self::NAME, legacy_id, event_id);
        Ok(())
    }
}
