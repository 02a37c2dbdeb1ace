//! What every legacy collection provides to the pipeline: parse a document into validated
//! values, name the documents it references, count the rows it yields, and build (resolve +
//! seal) its rows. Plus the shared pieces those steps use: the sealer that samples what it
//! seals, and resolved references.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::fields::Unknown;
use super::reject::Reason;
use super::rows::Rows;
use super::write::TableCounts;
use crate::crypto::CryptoError;
use crate::crypto::store::FieldCrypto;

/// Why building a document's rows stopped.
#[derive(Debug)]
pub enum Fail {
    /// The document is rejected (written to the rejects file).
    Reject(Reason),
    /// Sealing failed: not the document's fault, the run stops.
    Crypto(CryptoError),
}

impl From<Reason> for Fail {
    fn from(r: Reason) -> Self {
        Fail::Reject(r)
    }
}

impl From<CryptoError> for Fail {
    fn from(e: CryptoError) -> Self {
        Fail::Crypto(e)
    }
}

/// A legacy collection.
pub trait Collection {
    /// The file stem and the `legacy_id_map.collection` value.
    const NAME: &'static str;
    type Doc;
    fn parse(
        doc: &Map<String, Value>,
        legacy_id: &str,
        unknown: &mut Unknown,
        today: NaiveDate,
    ) -> Result<Self::Doc, Reason>;
    /// `(collection, legacy id)` of every document this one points to.
    fn references(doc: &Self::Doc, out: &mut Vec<(&'static str, String)>);
    /// Rows the document yields per table (the embedded-items check).
    fn expected(doc: &Self::Doc, out: &mut TableCounts);
    fn build(
        doc: Self::Doc,
        legacy_id: &str,
        refs: &Refs,
        sealer: &mut Sealer<'_>,
        rows: &mut Rows,
    ) -> Result<(), Fail>;
    /// One sealed value of the document's own row, to re-check an already imported document
    /// against the source: `(table, column, plaintext)`.
    fn sealed_probe(doc: &Self::Doc) -> Option<(&'static str, &'static str, Vec<u8>)>;
}

/// A referenced document that is already imported.
#[derive(Debug, Clone)]
pub struct RefInfo {
    pub new_id: Uuid,
    /// For users: their `users.role`.
    pub role: Option<String>,
    /// The patient the document belongs to (a patient user's `patients.id`, or a
    /// conversation's / prescription's patient).
    pub patient_id: Option<Uuid>,
}

pub type Refs = HashMap<(&'static str, String), RefInfo>;

/// Looks up `(collection, id)`; `Err` names the field as dangling.
pub fn resolve<'r>(refs: &'r Refs, coll: &'static str, id: &str, field: &str) -> Result<&'r RefInfo, Reason> {
    refs.get(&(coll, id.to_owned()))
        .ok_or_else(|| Reason::DanglingReference { field: field.to_owned(), collection: coll })
}

/// A referenced user that must be a patient; returns `(user id, patient id)`.
pub fn patient_ref(refs: &Refs, id: &str, field: &str) -> Result<(Uuid, Uuid), Reason> {
    let r = resolve(refs, "users", id, field)?;
    match (r.role.as_deref(), r.patient_id) {
        (Some("patient"), Some(pid)) => Ok((r.new_id, pid)),
        _ => Err(Reason::WrongReference { field: field.to_owned(), expected: "a patient" }),
    }
}

/// A referenced user that must be a clinician (a legacy doctor).
pub fn clinician_ref(refs: &Refs, id: &str, field: &str) -> Result<Uuid, Reason> {
    let r = resolve(refs, "users", id, field)?;
    match r.role.as_deref() {
        Some("clinician") => Ok(r.new_id),
        _ => Err(Reason::WrongReference { field: field.to_owned(), expected: "a doctor" }),
    }
}

/// A sealed value written this run, kept as a digest (no plaintext held) for the check.
#[derive(Debug, Clone)]
pub struct Sample {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: Uuid,
    pub digest: [u8; 32],
}

/// Seals values and, while `sampling` is on, remembers a digest of each for the report.
pub struct Sealer<'a> {
    crypto: &'a FieldCrypto,
    org: Uuid,
    pub sampling: bool,
    pub samples: Vec<Sample>,
}

impl<'a> Sealer<'a> {
    pub fn new(crypto: &'a FieldCrypto, org: Uuid) -> Self {
        Self { crypto, org, sampling: false, samples: Vec::new() }
    }

    /// The MRN blind index as the clinical API computes it: scoped to the organization, so the
    /// same MRN in two organizations gives unrelated digests (`GET /v1/patients?mrn=`).
    pub fn mrn_index(&self, mrn: &str) -> [u8; 32] {
        self.crypto.blind.blind_index_scoped(crate::crypto::BlindIndexKind::Mrn.label(), self.org, mrn)
    }

    pub fn crypto(&self) -> &FieldCrypto {
        self.crypto
    }

    pub fn seal(
        &mut self,
        table: &'static str,
        column: &'static str,
        id: Uuid,
        plain: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if self.sampling {
            self.samples.push(Sample { table, column, row_id: id, digest: Sha256::digest(plain).into() });
        }
        self.crypto.keyring.seal(table, column, id, plain)
    }

    pub fn seal_opt(
        &mut self,
        table: &'static str,
        column: &'static str,
        id: Uuid,
        plain: Option<&str>,
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        plain.map(|p| self.seal(table, column, id, p.as_bytes())).transpose()
    }
}

/// The creation time encoded in an ObjectId (its first four bytes, seconds since the epoch):
/// the default `created_at` of documents that carry no `createdAt`.
pub fn oid_time(legacy_id: &str) -> DateTime<Utc> {
    let secs = legacy_id.get(..8).and_then(|h| i64::from_str_radix(h, 16).ok()).unwrap_or(0);
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// Checks a short plain-text label (substance, drug name, frequency): trimmed, non-empty,
/// at most `max` characters, no control characters.
pub fn label(obj: &super::fields::Obj<'_>, keys: &[&str], max: usize) -> Result<String, Reason> {
    let s = obj.req_any(keys, super::ejson::string)?;
    check_label(s, max).map_err(|problem| Reason::InvalidField { field: obj.path(keys[0]), problem })
}

pub fn check_label(s: &str, max: usize) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    if t.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(t.to_owned())
}

/// Free text that will be sealed (notes, reactions, messages): no NUL, ≤ 10 000 characters.
pub fn text(obj: &super::fields::Obj<'_>, keys: &[&str]) -> Result<Option<String>, Reason> {
    match obj.get_any(keys, super::ejson::string)? {
        None => Ok(None),
        Some(s) => crate::domain::ClinicalText::parse(s)
            .map(|t| Some(t.as_str().to_owned()))
            .map_err(|e| super::fields::domain(obj.path(keys[0]), &e)),
    }
}
