//! `conversations.json`: a patient's case with a doctor, embedding its `messages`,
//! `symptoms` and `attachments`. Each doctor–patient pair becomes a care-team membership.
//! Field mapping: docs/import.md.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::collection::{Collection, Fail, Refs, Sealer, clinician_ref, label, oid_time, patient_ref, resolve, text};
use super::ejson;
use super::fields::{Obj, Tally, domain};
use super::reject::Reason;
use super::rows::Rows;
use super::write::TableCounts;
use crate::domain::{ClinicalText, Rule, SymptomSeverity};

const KNOWN: &[&str] = &[
    "_id",
    "__v",
    "patient",
    "doctor",
    "status",
    "subject",
    "createdAt",
    "updatedAt",
    "closedAt",
    "messages",
    "symptoms",
    "attachments",
];
const MESSAGE: &[&str] = &["_id", "sender", "content", "timestamp"];
const SYMPTOM: &[&str] = &["_id", "name", "severity", "onsetDate"];
const ATTACHMENT: &[&str] = &["_id", "filename", "contentType", "data", "size", "uploadedAt", "uploadedBy"];
/// Largest attachment accepted inline in an export line (larger files belong in object storage).
const MAX_ATTACHMENT: usize = 10 * 1024 * 1024;

pub struct ConversationDoc {
    patient: String,
    doctor: Option<String>,
    status: &'static str,
    subject: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    messages: Vec<(String, String, DateTime<Utc>)>,
    /// Messages rejected alone (path, reason).
    dropped: Vec<(String, Reason)>,
    symptoms: Vec<(String, SymptomSeverity, Option<NaiveDate>)>,
    attachments: Vec<Attachment>,
}

struct Attachment {
    filename: String,
    content_type: String,
    data: Vec<u8>,
    uploaded_by: Option<String>,
    at: DateTime<Utc>,
}

pub struct Conversations;

impl Collection for Conversations {
    const NAME: &'static str = "conversations";
    type Doc = ConversationDoc;

    fn parse(
        map: &Map<String, Value>,
        _: &str,
        legacy_id: &str,
        tally: &mut Tally,
        _: NaiveDate,
    ) -> Result<ConversationDoc, Reason> {
        let doc = Obj::new(map, String::new(), KNOWN, &mut tally.unknown);
        let patient = doc.req("patient", ejson::oid)?;
        let doctor = doc.get("doctor", ejson::oid)?;
        let status = match doc.get("status", ejson::string)?.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("pending") => "pending",
            Some("active" | "open" | "in_progress") => "active",
            Some("closed" | "resolved") => "closed",
            Some(_) => {
                return Err(Reason::InvalidField {
                    field: "status".into(),
                    problem: "must be pending, active or closed".into(),
                });
            }
        };
        let subject = text(&doc, &["subject"])?.unwrap_or_default();
        let created_at = doc.get("createdAt", ejson::datetime)?.unwrap_or_else(|| oid_time(legacy_id));
        let updated_at = doc.get("updatedAt", ejson::datetime)?.unwrap_or(created_at);
        let closed_at = match status {
            "closed" => Some(doc.get("closedAt", ejson::datetime)?.unwrap_or(updated_at)),
            _ => None,
        };
        let mut messages = Vec::new();
        let mut dropped = Vec::new();
        for (i, m) in doc.items("messages", MESSAGE, &mut tally.unknown)?.into_iter().enumerate() {
            let sender = m.req("sender", ejson::oid)?;
            let body = m.req("content", ejson::string)?;
            let at = m.get("timestamp", ejson::datetime)?.unwrap_or(created_at);
            match ClinicalText::parse_non_empty(body) {
                Ok(body) => messages.push((sender, body.as_str().to_owned(), at)),
                // A message is a row of its own: an over-long one is rejected alone and the
                // conversation imported without it (listed in the rejects file and counted).
                Err(e) if matches!(e.rule(), Rule::TooLong { .. }) => {
                    dropped.push((format!("messages[{i}]"), domain(m.path("content"), &e)));
                }
                Err(e) => return Err(domain(m.path("content"), &e)),
            }
        }
        let mut symptoms = Vec::new();
        for s in doc.items("symptoms", SYMPTOM, &mut tally.unknown)? {
            let name = label(&s, &["name"], 200, tally)?;
            let severity =
                SymptomSeverity::new(s.req("severity", ejson::int)?).map_err(|e| domain(s.path("severity"), &e))?;
            symptoms.push((name, severity, s.date_opt("onsetDate", &mut tally.normalized)?));
        }
        let mut attachments = Vec::new();
        for a in doc.items("attachments", ATTACHMENT, &mut tally.unknown)? {
            let filename = label(&a, &["filename"], 255, tally)?;
            let written = a.req("contentType", ejson::string)?;
            let content_type = written.trim().to_ascii_lowercase();
            tally.changed(&a.path("contentType"), "trimmed and lower-cased", written, &content_type);
            if !valid_content_type(&content_type) {
                return Err(Reason::InvalidField {
                    field: a.path("contentType"),
                    problem: "must be a media type like image/png".into(),
                });
            }
            let data = a.req("data", ejson::binary)?;
            if data.len() > MAX_ATTACHMENT {
                return Err(Reason::InvalidField { field: a.path("data"), problem: "must be at most 10 MiB".into() });
            }
            if a.get("size", ejson::int)?.is_some_and(|n| n != data.len() as i64) {
                return Err(Reason::InvalidField {
                    field: a.path("size"),
                    problem: "does not match the content length".into(),
                });
            }
            let uploaded_by = a.get("uploadedBy", ejson::oid)?;
            let at = a.get("uploadedAt", ejson::datetime)?.unwrap_or(created_at);
            attachments.push(Attachment { filename, content_type, data, uploaded_by, at });
        }
        Ok(ConversationDoc {
            patient,
            doctor,
            status,
            subject,
            created_at,
            updated_at,
            closed_at,
            messages,
            dropped,
            symptoms,
            attachments,
        })
    }

    fn references(doc: &ConversationDoc, out: &mut Vec<(&'static str, String)>) {
        out.push(("users", doc.patient.clone()));
        out.extend(doc.doctor.iter().map(|d| ("users", d.clone())));
        out.extend(doc.messages.iter().map(|m| ("users", m.0.clone())));
        out.extend(doc.attachments.iter().filter_map(|a| a.uploaded_by.clone()).map(|u| ("users", u)));
    }

    fn expected(doc: &ConversationDoc, out: &mut TableCounts) {
        *out.entry("conversations").or_default() += 1;
        *out.entry("messages").or_default() += doc.messages.len() as u64;
        *out.entry("symptoms").or_default() += doc.symptoms.len() as u64;
        *out.entry("attachments").or_default() += doc.attachments.len() as u64;
    }

    fn item_rejects(doc: &ConversationDoc) -> Vec<(String, Reason)> {
        doc.dropped.clone()
    }

    fn sealed_probe(doc: &ConversationDoc) -> Option<(&'static str, &'static str, Vec<u8>)> {
        Some(("conversations", "subject_enc", doc.subject.as_bytes().to_vec()))
    }

    fn build(
        doc: ConversationDoc,
        legacy_id: &str,
        refs: &Refs,
        s: &mut Sealer<'_>,
        rows: &mut Rows,
    ) -> Result<(), Fail> {
        let (patient_user, pid) = patient_ref(refs, &doc.patient, "patient")?;
        let doctor = doc.doctor.as_deref().map(|d| clinician_ref(refs, d, "doctor")).transpose()?;
        let cid = Uuid::now_v7();
        let c = &mut rows.conversations;
        c.id.push(cid);
        c.patient_id.push(pid);
        c.subject_enc.push(s.seal("conversations", "subject_enc", cid, doc.subject.as_bytes())?);
        c.status.push(doc.status.to_owned());
        c.assigned_clinician_id.push(doctor);
        c.opened_by.push(Some(patient_user));
        c.closed_at.push(doc.closed_at);
        c.created_at.push(doc.created_at);
        c.updated_at.push(doc.updated_at);
        if let Some(d) = doctor {
            rows.care_team.patient_id.push(pid);
            rows.care_team.clinician_id.push(d);
        }
        for (i, (sender, body, at)) in doc.messages.into_iter().enumerate() {
            let sender = resolve(refs, "users", &sender, &format!("messages[{i}].sender"))?.new_id;
            let id = Uuid::now_v7();
            let m = &mut rows.messages;
            m.id.push(id);
            m.conversation_id.push(cid);
            m.patient_id.push(pid);
            m.sender_id.push(sender);
            m.body_enc.push(s.seal("messages", "body_enc", id, body.as_bytes())?);
            m.created_at.push(at);
        }
        for (name, severity, onset) in doc.symptoms {
            let r = &mut rows.symptoms;
            r.id.push(Uuid::now_v7());
            r.conversation_id.push(cid);
            r.patient_id.push(pid);
            r.name.push(name);
            r.severity.push(i16::from(severity.get()));
            r.onset.push(onset);
            r.created_at.push(doc.created_at);
        }
        for (i, a) in doc.attachments.into_iter().enumerate() {
            let uploader = match &a.uploaded_by {
                Some(u) => resolve(refs, "users", u, &format!("attachments[{i}].uploadedBy"))?.new_id,
                None => patient_user,
            };
            let id = Uuid::now_v7();
            let r = &mut rows.attachments;
            r.id.push(id);
            r.patient_id.push(pid);
            r.conversation_id.push(cid);
            r.uploaded_by.push(Some(uploader));
            r.filename_enc.push(s.seal("attachments", "filename_enc", id, a.filename.as_bytes())?);
            r.content_type.push(a.content_type);
            r.size_bytes.push(a.data.len() as i64);
            r.sha256.push(Sha256::digest(&a.data).to_vec());
            r.content_enc.push(s.seal("attachments", "content_enc", id, &a.data)?);
            r.created_at.push(a.at);
        }
        rows.map(Self::NAME, legacy_id, cid);
        Ok(())
    }
}

fn valid_content_type(ct: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".+-".contains(&b))
    };
    matches!(ct.split_once('/'), Some((a, b)) if ok(a) && ok(b))
}
