//! `prescriptions.json`: a doctor's prescription for a patient. Field mapping: docs/import.md.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::collection::{Collection, Fail, Refs, Sealer, clinician_ref, label, oid_time, patient_ref, text};
use super::ejson;
use super::fields::{Obj, Tally, domain};
use super::reject::Reason;
use super::rows::Rows;
use super::write::TableCounts;
use crate::domain::{Quantity, Refills};

const KNOWN: &[&str] = &[
    "_id",
    "__v",
    "patient",
    "doctor",
    "medication",
    "dosage",
    "quantity",
    "refills",
    "refillsUsed",
    "instructions",
    "issuedAt",
    "createdAt",
    "expiresAt",
    "status",
    "cancelledAt",
    "cancelReason",
];

pub struct PrescriptionDoc {
    patient: String,
    doctor: String,
    medication: String,
    dose: String,
    quantity: Quantity,
    refills: Refills,
    refills_used: i16,
    instructions: Option<String>,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    status: &'static str,
    cancelled_at: Option<DateTime<Utc>>,
    cancel_reason: Option<String>,
    created_at: DateTime<Utc>,
}

pub struct Prescriptions;

impl Collection for Prescriptions {
    const NAME: &'static str = "prescriptions";
    type Doc = PrescriptionDoc;

    fn parse(
        map: &Map<String, Value>,
        _: &str,
        legacy_id: &str,
        tally: &mut Tally,
        _: NaiveDate,
    ) -> Result<PrescriptionDoc, Reason> {
        let doc = Obj::new(map, String::new(), KNOWN, &mut tally.unknown);
        let patient = doc.req("patient", ejson::oid)?;
        let doctor = doc.req("doctor", ejson::oid)?;
        let medication = label(&doc, &["medication"], 200, tally)?;
        let dose = label(&doc, &["dosage"], 100, tally)?;
        let quantity = Quantity::new(doc.req("quantity", ejson::int)?).map_err(|e| domain("quantity".into(), &e))?;
        let refills =
            Refills::new(doc.get("refills", ejson::int)?.unwrap_or(0)).map_err(|e| domain("refills".into(), &e))?;
        let used = doc.get("refillsUsed", ejson::int)?.unwrap_or(0);
        if used < 0 || used > i64::from(refills.get()) {
            return Err(Reason::InvalidField {
                field: "refillsUsed".into(),
                problem: "must be between 0 and refills".into(),
            });
        }
        let created = doc.get("createdAt", ejson::datetime)?;
        let issued_at = doc.get("issuedAt", ejson::datetime)?.or(created).unwrap_or_else(|| oid_time(legacy_id));
        let latest = issued_at.checked_add_months(Months::new(12)).unwrap_or(issued_at);
        let expires_at = match doc.get("expiresAt", ejson::datetime)? {
            Some(e) if e > issued_at && e <= latest => e,
            Some(_) => {
                return Err(Reason::InvalidField {
                    field: "expiresAt".into(),
                    problem: "must be after the issue date and at most one year after it".into(),
                });
            }
            // 365 days never exceeds the database's `issued_at + interval '1 year'`.
            None => issued_at + Duration::days(365),
        };
        let status = match doc.get("status", ejson::string)?.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("active") => "active",
            Some("completed" | "filled") => "completed",
            Some("cancelled" | "canceled") => "cancelled",
            Some("expired") => "expired",
            Some(_) => {
                return Err(Reason::InvalidField {
                    field: "status".into(),
                    problem: "must be active, completed, cancelled or expired".into(),
                });
            }
        };
        let cancelled_at = match status {
            "cancelled" => Some(doc.get("cancelledAt", ejson::datetime)?.unwrap_or(issued_at)),
            _ => None,
        };
        Ok(PrescriptionDoc {
            patient,
            doctor,
            medication,
            dose,
            quantity,
            refills,
            refills_used: used as i16,
            instructions: text(&doc, &["instructions"])?,
            issued_at,
            expires_at,
            status,
            cancelled_at,
            cancel_reason: text(&doc, &["cancelReason"])?,
            created_at: created.unwrap_or(issued_at),
        })
    }

    fn references(doc: &PrescriptionDoc, out: &mut Vec<(&'static str, String)>) {
        out.push(("users", doc.patient.clone()));
        out.push(("users", doc.doctor.clone()));
    }

    fn expected(_: &PrescriptionDoc, out: &mut TableCounts) {
        *out.entry("prescriptions").or_default() += 1;
    }

    fn sealed_probe(doc: &PrescriptionDoc) -> Option<(&'static str, &'static str, Vec<u8>)> {
        doc.instructions.as_ref().map(|i| ("prescriptions", "instructions_enc", i.as_bytes().to_vec()))
    }

    fn build(
        doc: PrescriptionDoc,
        legacy_id: &str,
        refs: &Refs,
        s: &mut Sealer<'_>,
        rows: &mut Rows,
    ) -> Result<(), Fail> {
        let (_, pid) = patient_ref(refs, &doc.patient, "patient")?;
        let prescriber = clinician_ref(refs, &doc.doctor, "doctor")?;
        let id = Uuid::now_v7();
        let r = &mut rows.prescriptions;
        r.id.push(id);
        r.patient_id.push(pid);
        r.prescriber_id.push(prescriber);
        r.medication.push(doc.medication);
        r.dose.push(doc.dose);
        r.quantity.push(i32::try_from(doc.quantity.get()).unwrap_or(i32::MAX));
        r.refills_allowed.push(i16::from(doc.refills.get()));
        r.refills_used.push(doc.refills_used);
        r.instructions_enc.push(s.seal_opt("prescriptions", "instructions_enc", id, doc.instructions.as_deref())?);
        r.issued_at.push(doc.issued_at);
        r.expires_at.push(doc.expires_at);
        r.status.push(doc.status.to_owned());
        r.cancelled_at.push(doc.cancelled_at);
        r.cancel_reason_enc.push(s.seal_opt("prescriptions", "cancel_reason_enc", id, doc.cancel_reason.as_deref())?);
        r.created_at.push(doc.created_at);
        rows.map(Self::NAME, legacy_id, id);
        Ok(())
    }
}
