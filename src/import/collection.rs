//! What every legacy collection provides to the pipeline: parse a document into validated
//! values, name the documents it references, count the rows it yields, and build (resolve +
//! seal) its rows. Plus the shared pieces those steps use: the sealer that samples what it
//! seals, and resolved references.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::fields::Tally;
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
    /// `raw` is the document's source text (structured values kept byte for byte).
    fn parse(
        doc: &Map<String, Value>,
        raw: &str,
        legacy_id: &str,
        tally: &mut Tally,
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
    /// Embedded items refused on their own while the document is imported (path, reason):
    /// only where the data model allows it (an over-long message). Not in [`Self::expected`].
    fn item_rejects(_doc: &Self::Doc) -> Vec<(String, Reason)> {
        Vec::new()
    }
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

/// A sealed value kept for the check, as a digest (no plaintext held).
#[derive(Debug, Clone)]
pub struct Sample {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: Uuid,
    pub digest: [u8; 32],
}

/// A uniform random sample (Algorithm R) of the sealed values of one table.
#[derive(Debug, Default)]
pub struct Reservoir {
    /// Values offered: sealed and committed by this run, or found already imported.
    pub population: u64,
    pub samples: Vec<Sample>,
}

/// Seals values and keeps a fixed-size uniform random sample of them per table across the
/// whole run. A value counts only once its batch is written: seals of a document that is then
/// rejected, or of a batch the database refused, are taken back.
pub struct Sealer<'a> {
    crypto: &'a FieldCrypto,
    org: Uuid,
    /// `custos import verify`: "sealing" returns the plaintext (what the import would seal),
    /// nothing is sampled.
    plain: bool,
    size: usize,
    rng: StdRng,
    reservoirs: BTreeMap<&'static str, Reservoir>,
    /// Sampled values of the batch not yet written, in sealing order.
    pending: Vec<Sample>,
    /// Values sealed per table in the batch not yet written.
    pending_counts: BTreeMap<&'static str, u64>,
    /// `pending` and `pending_counts` as the current document began.
    mark: (usize, BTreeMap<&'static str, u64>),
}

impl<'a> Sealer<'a> {
    pub fn new(crypto: &'a FieldCrypto, org: Uuid, size: usize) -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        Self {
            crypto,
            org,
            plain: false,
            size,
            rng: StdRng::from_seed(seed),
            reservoirs: BTreeMap::new(),
            pending: Vec::new(),
            pending_counts: BTreeMap::new(),
            mark: (0, BTreeMap::new()),
        }
    }

    /// A sealer that does not seal: rows built with it hold the plaintext of every `*_enc`
    /// column, for comparison with what the database holds (opened).
    pub fn plain(crypto: &'a FieldCrypto, org: Uuid) -> Self {
        Self { plain: true, ..Self::new(crypto, org, 0) }
    }

    /// Whether the `n`-th value of a table (1-based) enters the sample.
    fn keep(&mut self, n: u64) -> bool {
        n <= self.size as u64 || self.rng.random_range(0..n) < self.size as u64
    }

    /// Puts a kept sample in its table's reservoir (replacing a random one when full).
    fn place(&mut self, s: Sample) {
        let size = self.size;
        let slot = self.rng.random_range(0..size.max(1));
        let r = self.reservoirs.entry(s.table).or_default();
        if r.samples.len() < size {
            r.samples.push(s);
        } else {
            r.samples[slot] = s;
        }
    }

    /// A sealed value of an already imported row, compared with the source.
    pub fn offer_stored(&mut self, table: &'static str, column: &'static str, row_id: Uuid, plain: &[u8]) {
        let n = self.reservoirs.get(table).map_or(0, |r| r.population) + 1;
        self.reservoirs.entry(table).or_default().population = n;
        if self.keep(n) {
            self.place(Sample { table, column, row_id, digest: Sha256::digest(plain).into() });
        }
    }

    pub fn begin_document(&mut self) {
        self.mark = (self.pending.len(), self.pending_counts.clone());
    }

    pub fn discard_document(&mut self) {
        self.pending.truncate(self.mark.0);
        self.pending_counts = std::mem::take(&mut self.mark.1);
    }

    pub fn discard_batch(&mut self) {
        self.pending.clear();
        self.pending_counts.clear();
    }

    /// The batch's rows are written: its sampled values join the reservoirs.
    pub fn accept(&mut self) {
        for s in std::mem::take(&mut self.pending) {
            self.place(s);
        }
        for (table, n) in std::mem::take(&mut self.pending_counts) {
            self.reservoirs.entry(table).or_default().population += n;
        }
    }

    pub fn reservoirs(&self) -> &BTreeMap<&'static str, Reservoir> {
        &self.reservoirs
    }

    /// The MRN blind index as the clinical API computes it: scoped to the organization, so the
    /// same MRN in two organizations gives unrelated digests (`GET /v1/patients?mrn=`).
    pub fn mrn_index(&self, mrn: &str) -> [u8; 32] {
        self.crypto.blind.blind_index_scoped(crate::crypto::BlindIndexKind::Mrn.label(), self.org, mrn)
    }

    /// The chart email's blind index, scoped like the clinical API's (src/clinical/patients.rs).
    pub fn email_index(&self, email: &str) -> [u8; 32] {
        self.crypto.blind.blind_index_scoped(crate::crypto::BlindIndexKind::Email.label(), self.org, email)
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
        if self.plain {
            return Ok(plain.to_vec());
        }
        let pending = self.pending_counts.entry(table).or_default();
        *pending += 1;
        let n = self.reservoirs.get(table).map_or(0, |r| r.population) + *pending;
        if self.keep(n) {
            self.pending.push(Sample { table, column, row_id: id, digest: Sha256::digest(plain).into() });
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

/// Checks a short plain-text label (substance, drug name, frequency): trimmed (counted),
/// non-empty, at most `max` characters, no control characters.
pub fn label(obj: &super::fields::Obj<'_>, keys: &[&str], max: usize, tally: &mut Tally) -> Result<String, Reason> {
    let (v, path) = obj.opt_any(keys).ok_or_else(|| Reason::MissingField(obj.path(keys[0])))?;
    let s = super::ejson::string(v).map_err(|p| super::fields::invalid(path.clone(), p))?;
    let t = check_label(s, max).map_err(|problem| Reason::InvalidField { field: path.clone(), problem })?;
    tally.changed(&path, TRIMMED, s, &t);
    Ok(t)
}

/// The normalization of email addresses (stored lower case, as login compares them).
pub const LOWER_CASED: &str = "lower-cased";

/// The normalization of surrounding white space (Unicode White_Space: NBSP and the
/// ideographic space included).
pub const TRIMMED: &str = "surrounding white space removed";

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
