//! `users.json`: accounts (patients, doctors → clinicians, admins) with the patient's
//! demographics and embedded `allergies`, `currentMedications` and `medicalHistory`.
//! Field mapping: docs/import.md.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::collection::{Collection, Fail, Refs, Sealer, check_label, label, oid_time, text};
use super::ejson;
use super::fields::{Obj, Unknown, domain};
use super::reject::Reason;
use super::rows::Rows;
use super::write::TableCounts;
use crate::crypto::BlindIndexKind;
use crate::domain::{
    BirthDate, BloodType, Dosage, Email, HeightCm, Icd10Code, MedicationRoute, Mrn, PersonName, Phone, Severity, Sex,
    WeightKg,
};

const KNOWN: &[&str] = &[
    "_id",
    "__v",
    "role",
    "email",
    "password",
    "firstName",
    "lastName",
    "isActive",
    "createdAt",
    "dateOfBirth",
    "gender",
    "mrn",
    "ssn",
    "phone",
    "address",
    "bloodType",
    "height",
    "weight",
    "emergencyContact",
    "allergies",
    "currentMedications",
    "medicalHistory",
];
const ALLERGY: &[&str] = &["_id", "substance", "allergen", "reaction", "severity"];
const MEDICATION: &[&str] = &["_id", "name", "dosage", "frequency", "route", "startDate", "endDate", "notes"];
const HISTORY: &[&str] = &["_id", "condition", "icd10Code", "diagnosedDate", "resolvedDate", "notes"];

pub struct UserDoc {
    role: &'static str,
    email: Email,
    password_hash: String,
    display_name: Option<String>,
    active: bool,
    created_at: DateTime<Utc>,
    patient: Option<Box<PatientPart>>,
}

struct PatientPart {
    given: PersonName,
    family: PersonName,
    birth_date: BirthDate,
    sex: Sex,
    mrn: Mrn,
    ssn: Option<String>,
    phone: Option<Phone>,
    address: Option<String>,
    info: Option<MedicalInfo>,
    allergies: Vec<(String, Option<String>, Severity)>,
    medications: Vec<Medication>,
    history: Vec<History>,
}

/// Blood type, height (cm), weight (kg), emergency contact (kept whole, sealed).
type MedicalInfo = (BloodType, Option<f64>, Option<f64>, Option<String>);

struct Medication {
    name: String,
    dose: Dosage,
    frequency: String,
    route: MedicationRoute,
    start: NaiveDate,
    end: Option<NaiveDate>,
    notes: Option<String>,
}

struct History {
    code: Icd10Code,
    description: Option<String>,
    diagnosed: NaiveDate,
    resolved: Option<NaiveDate>,
    notes: Option<String>,
}

pub struct Users;

impl Collection for Users {
    const NAME: &'static str = "users";
    type Doc = UserDoc;

    fn parse(
        map: &Map<String, Value>,
        legacy_id: &str,
        unknown: &mut Unknown,
        today: NaiveDate,
    ) -> Result<UserDoc, Reason> {
        let doc = Obj::new(map, String::new(), KNOWN, unknown);
        let role = match doc.req("role", ejson::string)?.trim().to_ascii_lowercase().as_str() {
            "patient" => "patient",
            "doctor" | "clinician" | "physician" => "clinician",
            "admin" => "admin",
            _ => {
                return Err(Reason::InvalidField {
                    field: "role".into(),
                    problem: "must be patient, doctor or admin".into(),
                });
            }
        };
        let email = doc.parsed("email", Email::parse)?;
        let password_hash = doc.req("password", ejson::string)?.to_owned();
        if !is_bcrypt(&password_hash) {
            return Err(Reason::InvalidField { field: "password".into(), problem: "must be a bcrypt hash".into() });
        }
        let first = doc.parsed_opt("firstName", PersonName::parse)?;
        let last = doc.parsed_opt("lastName", PersonName::parse)?;
        let display_name = match (&first, &last) {
            (Some(f), Some(l)) => Some(format!("{} {}", f.as_str(), l.as_str())),
            (Some(n), None) | (None, Some(n)) => Some(n.as_str().to_owned()),
            (None, None) => None,
        };
        let active = doc.get("isActive", ejson::boolean)?.unwrap_or(true);
        let created_at = doc.get("createdAt", ejson::datetime)?.unwrap_or_else(|| oid_time(legacy_id));
        let patient = if role == "patient" {
            let given = first.ok_or_else(|| Reason::MissingField("firstName".into()))?;
            let family = last.ok_or_else(|| Reason::MissingField("lastName".into()))?;
            Some(Box::new(parse_patient(&doc, legacy_id, given, family, created_at, unknown, today)?))
        } else {
            None
        };
        Ok(UserDoc { role, email, password_hash, display_name, active, created_at, patient })
    }

    fn references(_: &UserDoc, _: &mut Vec<(&'static str, String)>) {}

    fn expected(doc: &UserDoc, out: &mut TableCounts) {
        *out.entry("users").or_default() += 1;
        if let Some(p) = &doc.patient {
            *out.entry("patients").or_default() += 1;
            *out.entry("patient_medical_info").or_default() += u64::from(p.info.is_some());
            *out.entry("allergies").or_default() += p.allergies.len() as u64;
            *out.entry("medications").or_default() += p.medications.len() as u64;
            *out.entry("medical_history").or_default() += p.history.len() as u64;
        }
    }

    fn sealed_probe(doc: &UserDoc) -> Option<(&'static str, &'static str, Vec<u8>)> {
        Some(("users", "email_enc", doc.email.as_str().as_bytes().to_vec()))
    }

    fn build(doc: UserDoc, legacy_id: &str, _: &Refs, s: &mut Sealer<'_>, rows: &mut Rows) -> Result<(), Fail> {
        let uid = Uuid::now_v7();
        let email_bidx = s.crypto().blind.index(BlindIndexKind::Email, doc.email.as_str());
        let u = &mut rows.users;
        u.id.push(uid);
        u.role.push(doc.role.to_owned());
        u.email_enc.push(s.seal("users", "email_enc", uid, doc.email.as_str().as_bytes())?);
        u.email_bidx.push(email_bidx.to_vec());
        u.display_name_enc.push(s.seal_opt("users", "display_name_enc", uid, doc.display_name.as_deref())?);
        u.password_hash.push(doc.password_hash);
        u.status.push(if doc.active { "active" } else { "disabled" }.to_owned());
        u.created_at.push(doc.created_at);
        rows.map(Self::NAME, legacy_id, uid);
        if let Some(p) = doc.patient {
            build_patient(*p, uid, doc.created_at, s, rows)?;
        }
        Ok(())
    }
}

fn is_bcrypt(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60 && (h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$")) && b[6] == b'$'
}

fn parse_patient(
    doc: &Obj<'_>,
    legacy_id: &str,
    given: PersonName,
    family: PersonName,
    created_at: DateTime<Utc>,
    unknown: &mut Unknown,
    today: NaiveDate,
) -> Result<PatientPart, Reason> {
    let dob = doc.req("dateOfBirth", ejson::date)?;
    let birth_date = BirthDate::from_date(dob, today).map_err(|e| domain("dateOfBirth".into(), &e))?;
    let sex = match doc.get("gender", ejson::string)? {
        None => Sex::Unknown,
        Some(g) => match g.trim().to_ascii_lowercase().as_str() {
            "m" => Sex::Male,
            "f" => Sex::Female,
            other => Sex::parse(other).map_err(|e| domain("gender".into(), &e))?,
        },
    };
    // No MRN in the source: a stable one derived from the ObjectId, so re-runs agree.
    let mrn = match doc.parsed_opt("mrn", Mrn::parse)? {
        Some(m) => m,
        None => Mrn::parse(&format!("LEG-{legacy_id}")).map_err(|e| domain("mrn".into(), &e))?,
    };
    let ssn = doc.get("ssn", ejson::string)?.map(str::to_owned);
    let phone = doc.parsed_opt("phone", Phone::parse)?;
    let address = doc.opt("address").map(opaque);
    let blood = doc.parsed_opt("bloodType", BloodType::parse)?;
    let height = doc.get("height", ejson::double)?;
    if let Some(h) = height {
        HeightCm::new(h).map_err(|e| domain("height".into(), &e))?;
    }
    let weight = doc.get("weight", ejson::double)?;
    if let Some(w) = weight {
        WeightKg::new(w).map_err(|e| domain("weight".into(), &e))?;
    }
    let contact = doc.opt("emergencyContact").map(opaque);
    let info = (blood.is_some() || height.is_some() || weight.is_some() || contact.is_some())
        .then(|| (blood.unwrap_or(BloodType::Unknown), height, weight, contact));

    let mut allergies: Vec<(String, Option<String>, Severity)> = Vec::new();
    for a in doc.items("allergies", ALLERGY, unknown)? {
        let substance = label(&a, &["substance", "allergen"], 200)?;
        let reaction = text(&a, &["reaction"])?;
        let severity = a.parsed("severity", |s| Severity::parse(&s.replace('-', "_")))?;
        if allergies.iter().any(|(other, _, _)| other.to_lowercase() == substance.to_lowercase()) {
            return Err(Reason::InvalidField {
                field: a.path("substance"),
                problem: "repeats an earlier allergy of the same patient".into(),
            });
        }
        allergies.push((substance, reaction, severity));
    }
    let mut medications = Vec::new();
    for m in doc.items("currentMedications", MEDICATION, unknown)? {
        let start = m.get("startDate", ejson::date)?.unwrap_or_else(|| created_at.date_naive());
        let end = m.get("endDate", ejson::date)?;
        if end.is_some_and(|e| e < start) {
            return Err(Reason::InvalidField {
                field: m.path("endDate"),
                problem: "must not be before startDate".into(),
            });
        }
        let route = m.parsed_opt("route", MedicationRoute::parse)?.unwrap_or(MedicationRoute::Other);
        let frequency = m.req("frequency", ejson::string).and_then(|f| {
            check_label(f, 100).map_err(|problem| Reason::InvalidField { field: m.path("frequency"), problem })
        })?;
        medications.push(Medication {
            name: label(&m, &["name"], 200)?,
            dose: m.parsed("dosage", Dosage::parse)?,
            frequency,
            route,
            start,
            end,
            notes: text(&m, &["notes"])?,
        });
    }
    let mut history = Vec::new();
    for h in doc.items("medicalHistory", HISTORY, unknown)? {
        let code = h.parsed("icd10Code", Icd10Code::parse)?;
        let description = match h.get("condition", ejson::string)? {
            Some(c) => Some(
                check_label(c, 500).map_err(|problem| Reason::InvalidField { field: h.path("condition"), problem })?,
            ),
            None => None,
        };
        let diagnosed = h.req("diagnosedDate", ejson::date)?;
        let resolved = h.get("resolvedDate", ejson::date)?;
        if resolved.is_some_and(|r| r < diagnosed) {
            return Err(Reason::InvalidField {
                field: h.path("resolvedDate"),
                problem: "must not be before diagnosedDate".into(),
            });
        }
        history.push(History { code, description, diagnosed, resolved, notes: text(&h, &["notes"])? });
    }
    Ok(PatientPart { given, family, birth_date, sex, mrn, ssn, phone, address, info, allergies, medications, history })
}

/// A structured value kept whole (address, emergency contact): a string as is, anything else
/// as its compact JSON.
fn opaque(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn build_patient(
    p: PatientPart,
    uid: Uuid,
    created_at: DateTime<Utc>,
    s: &mut Sealer<'_>,
    rows: &mut Rows,
) -> Result<(), Fail> {
    let pid = Uuid::now_v7();
    let mrn_bidx = s.mrn_index(p.mrn.as_str());
    let r = &mut rows.patients;
    r.id.push(pid);
    r.user_id.push(uid);
    r.mrn_enc.push(s.seal("patients", "mrn_enc", pid, p.mrn.as_str().as_bytes())?);
    r.mrn_bidx.push(mrn_bidx.to_vec());
    r.given_name_enc.push(s.seal("patients", "given_name_enc", pid, p.given.as_str().as_bytes())?);
    r.family_name_enc.push(s.seal("patients", "family_name_enc", pid, p.family.as_str().as_bytes())?);
    r.birth_date_enc.push(s.seal("patients", "birth_date_enc", pid, p.birth_date.to_iso_string().as_bytes())?);
    r.sex.push(p.sex.as_str().to_owned());
    r.ssn_enc.push(s.seal_opt("patients", "ssn_enc", pid, p.ssn.as_deref())?);
    r.phone_enc.push(s.seal_opt("patients", "phone_enc", pid, p.phone.as_ref().map(Phone::as_str))?);
    r.address_enc.push(s.seal_opt("patients", "address_enc", pid, p.address.as_deref())?);
    r.created_at.push(created_at);
    if let Some((blood, height, weight, contact)) = p.info {
        let id = Uuid::now_v7();
        let m = &mut rows.medical_info;
        m.id.push(id);
        m.patient_id.push(pid);
        m.blood_type.push(blood.as_str().to_owned());
        m.height_cm.push(height);
        m.weight_kg.push(weight);
        m.emergency_contact_enc.push(s.seal_opt(
            "patient_medical_info",
            "emergency_contact_enc",
            id,
            contact.as_deref(),
        )?);
    }
    for (substance, reaction, severity) in p.allergies {
        let id = Uuid::now_v7();
        let a = &mut rows.allergies;
        a.id.push(id);
        a.patient_id.push(pid);
        a.substance.push(substance);
        a.reaction_enc.push(s.seal_opt("allergies", "reaction_enc", id, reaction.as_deref())?);
        a.severity.push(severity.as_str().to_owned());
        a.status.push("active".to_owned());
        a.created_at.push(created_at);
    }
    let today = Utc::now().date_naive();
    for m in p.medications {
        let id = Uuid::now_v7();
        let r = &mut rows.medications;
        r.id.push(id);
        r.patient_id.push(pid);
        r.name.push(m.name);
        r.dose.push(m.dose.value());
        r.unit.push(m.dose.unit().as_str().to_owned());
        r.route.push(m.route.as_str().to_owned());
        r.frequency.push(m.frequency);
        r.start_date.push(m.start);
        r.status.push(if m.end.is_some_and(|e| e <= today) { "completed" } else { "active" }.to_owned());
        r.end_date.push(m.end);
        r.notes_enc.push(s.seal_opt("medications", "notes_enc", id, m.notes.as_deref())?);
        r.created_at.push(created_at);
    }
    for h in p.history {
        let id = Uuid::now_v7();
        let r = &mut rows.history;
        r.id.push(id);
        r.patient_id.push(pid);
        r.icd10_code.push(h.code.as_str().to_owned());
        r.description.push(h.description);
        r.diagnosed_on.push(h.diagnosed);
        r.resolved_on.push(h.resolved);
        r.notes_enc.push(s.seal_opt("medical_history", "notes_enc", id, h.notes.as_deref())?);
        r.created_at.push(created_at);
    }
    Ok(())
}
