//! `users.json`: accounts (patients, doctors → clinicians, admins) with the patient's
//! demographics and embedded `allergies`, `currentMedications` and `medicalHistory`.
//! Field mapping: docs/import.md.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use serde_json::value::RawValue;

use super::collection::{Collection, Fail, LOWER_CASED, Refs, Sealer, TRIMMED, label, oid_time, text};
use super::ejson;
use super::fields::{Obj, Tally, domain};
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
    /// For the blind index (upper case, as the clinical API computes it).
    mrn: Mrn,
    /// As written in the source (trimmed): what is sealed.
    mrn_text: String,
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
        raw: &str,
        legacy_id: &str,
        tally: &mut Tally,
        today: NaiveDate,
    ) -> Result<UserDoc, Reason> {
        let doc = Obj::new(map, String::new(), KNOWN, &mut tally.unknown);
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
        let written = doc.req("email", ejson::string)?;
        tally.changed("email", TRIMMED, written, email.as_entered());
        tally.changed("email", LOWER_CASED, email.as_entered(), email.as_str());
        let password_hash = doc.req("password", ejson::string)?.to_owned();
        if !is_bcrypt(&password_hash) {
            return Err(Reason::InvalidField { field: "password".into(), problem: "must be a bcrypt hash".into() });
        }
        let first = name(&doc, "firstName", tally)?;
        let last = name(&doc, "lastName", tally)?;
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
            let names = (given, family);
            Some(Box::new(parse_patient(&doc, raw, legacy_id, names, created_at, tally, today)?))
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
            build_patient(*p, uid, &doc.email, doc.created_at, s, rows)?;
        }
        Ok(())
    }
}

fn is_bcrypt(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60 && (h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$")) && b[6] == b'$'
}

/// A person name (trimmed, counted).
fn name(doc: &Obj<'_>, key: &str, tally: &mut Tally) -> Result<Option<PersonName>, Reason> {
    let Some(written) = doc.get(key, ejson::string)? else { return Ok(None) };
    let n = PersonName::parse(written).map_err(|e| domain(key.into(), &e))?;
    tally.changed(key, TRIMMED, written, n.as_str());
    Ok(Some(n))
}

/// A number for a `numeric(p, scale)` column: refused when the column would round it.
fn exact(doc: &Obj<'_>, key: &str, scale: u32) -> Result<Option<f64>, Reason> {
    let Some((value, text)) = doc.get(key, ejson::decimal)? else { return Ok(None) };
    match ejson::fraction_digits(&text) {
        Some(d) if d <= scale => Ok(Some(value)),
        _ => Err(Reason::InvalidField {
            field: doc.path(key),
            problem: format!("has more than {scale} decimal place(s); it would be rounded"),
        }),
    }
}

/// Decimal places `medications.dose` keeps (`numeric(12, 4)`).
const DOSE_SCALE: u32 = 4;

fn dosage(m: &Obj<'_>, tally: &mut Tally) -> Result<Dosage, Reason> {
    let written = m.req("dosage", ejson::string)?;
    let t = written.trim();
    let amount_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    if ejson::fraction_digits(&t[..amount_end]).is_some_and(|d| d > DOSE_SCALE) {
        return Err(Reason::InvalidField {
            field: m.path("dosage"),
            problem: format!("has more than {DOSE_SCALE} decimal places; it would be rounded"),
        });
    }
    let dose = Dosage::parse(written).map_err(|e| domain(m.path("dosage"), &e))?;
    tally.changed(&m.path("dosage"), TRIMMED, written, t);
    tally.changed(
        &m.path("dosage"),
        "re-written as amount and unit",
        t,
        &format!("{} {}", dose.value(), dose.unit().as_str()),
    );
    Ok(dose)
}

/// The exact source text of top-level structured values (kept byte for byte when sealed).
#[derive(serde::Deserialize)]
struct RawParts<'a> {
    #[serde(borrow, default)]
    address: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "emergencyContact")]
    emergency_contact: Option<&'a RawValue>,
}

/// A structured value kept whole (address, emergency contact): a string as is, anything else
/// as its JSON text exactly as written in the source (key order and spacing kept). If the
/// source text cannot be isolated (a key written twice), the compact JSON is stored and
/// counted.
fn opaque(doc: &Obj<'_>, raw: &str, key: &str, tally: &mut Tally) -> Option<String> {
    match doc.opt(key)? {
        Value::String(s) => Some(s.clone()),
        other => {
            let parts = serde_json::from_str::<RawParts<'_>>(raw).ok();
            let exact = parts.and_then(|p| if key == "address" { p.address } else { p.emergency_contact });
            match exact {
                Some(text) => Some(text.get().to_owned()),
                None => {
                    tally.normalized.note(key, "re-serialized as compact JSON");
                    Some(other.to_string())
                }
            }
        }
    }
}

fn parse_patient(
    doc: &Obj<'_>,
    raw: &str,
    legacy_id: &str,
    (given, family): (PersonName, PersonName),
    created_at: DateTime<Utc>,
    tally: &mut Tally,
    today: NaiveDate,
) -> Result<PatientPart, Reason> {
    let dob = doc.date_req("dateOfBirth", &mut tally.normalized)?;
    let birth_date = BirthDate::from_date(dob, today).map_err(|e| domain("dateOfBirth".into(), &e))?;
    let sex = match doc.get("gender", ejson::string)? {
        None => Sex::Unknown,
        Some(g) => match g.trim().to_ascii_lowercase().as_str() {
            "m" => Sex::Male,
            "f" => Sex::Female,
            other => Sex::parse(other).map_err(|e| domain("gender".into(), &e))?,
        },
    };
    // The MRN is stored as written (trimmed, counted); the blind index takes the upper-case
    // form the clinical API computes, so look-ups stay case-insensitive.
    // No MRN in the source: a stable one derived from the ObjectId, so re-runs agree.
    let (mrn, mrn_text) = match doc.get("mrn", ejson::string)? {
        Some(written) => {
            let m = Mrn::parse(written).map_err(|e| domain("mrn".into(), &e))?;
            tally.changed("mrn", TRIMMED, written, written.trim());
            (m, written.trim().to_owned())
        }
        None => {
            let m = Mrn::parse(&format!("LEG-{legacy_id}")).map_err(|e| domain("mrn".into(), &e))?;
            let text = m.as_str().to_owned();
            (m, text)
        }
    };
    let ssn = doc.get("ssn", ejson::string)?.map(str::to_owned);
    let phone = match doc.get("phone", ejson::string)? {
        Some(written) => {
            let p = Phone::parse(written).map_err(|e| domain("phone".into(), &e))?;
            tally.changed("phone", "re-written in E.164 form", written, p.as_str());
            Some(p)
        }
        None => None,
    };
    let address = opaque(doc, raw, "address", tally);
    let blood = doc.parsed_opt("bloodType", BloodType::parse)?;
    let height = exact(doc, "height", 1)?;
    if let Some(h) = height {
        HeightCm::new(h).map_err(|e| domain("height".into(), &e))?;
    }
    let weight = exact(doc, "weight", 1)?;
    if let Some(w) = weight {
        WeightKg::new(w).map_err(|e| domain("weight".into(), &e))?;
    }
    let contact = opaque(doc, raw, "emergencyContact", tally);
    let info = (blood.is_some() || height.is_some() || weight.is_some() || contact.is_some())
        .then(|| (blood.unwrap_or(BloodType::Unknown), height, weight, contact));

    let mut allergies: Vec<(String, Option<String>, Severity)> = Vec::new();
    for a in doc.items("allergies", ALLERGY, &mut tally.unknown)? {
        let substance = label(&a, &["substance", "allergen"], 200, tally)?;
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
    for m in doc.items("currentMedications", MEDICATION, &mut tally.unknown)? {
        let start = m.date_opt("startDate", &mut tally.normalized)?.unwrap_or_else(|| created_at.date_naive());
        let end = m.date_opt("endDate", &mut tally.normalized)?;
        if end.is_some_and(|e| e < start) {
            return Err(Reason::InvalidField {
                field: m.path("endDate"),
                problem: "must not be before startDate".into(),
            });
        }
        let route = m.parsed_opt("route", MedicationRoute::parse)?.unwrap_or(MedicationRoute::Other);
        let frequency = label(&m, &["frequency"], 100, tally)?;
        medications.push(Medication {
            name: label(&m, &["name"], 200, tally)?,
            dose: dosage(&m, tally)?,
            frequency,
            route,
            start,
            end,
            notes: text(&m, &["notes"])?,
        });
    }
    let mut history = Vec::new();
    for h in doc.items("medicalHistory", HISTORY, &mut tally.unknown)? {
        let written = h.req("icd10Code", ejson::string)?;
        let code = Icd10Code::parse(written).map_err(|e| domain(h.path("icd10Code"), &e))?;
        tally.changed(&h.path("icd10Code"), "re-written in dotted upper-case ICD-10-CM form", written, code.as_str());
        let description = match h.get("condition", ejson::string)? {
            Some(_) => Some(label(&h, &["condition"], 500, tally)?),
            None => None,
        };
        let diagnosed = h.date_req("diagnosedDate", &mut tally.normalized)?;
        let resolved = h.date_opt("resolvedDate", &mut tally.normalized)?;
        if resolved.is_some_and(|r| r < diagnosed) {
            return Err(Reason::InvalidField {
                field: h.path("resolvedDate"),
                problem: "must not be before diagnosedDate".into(),
            });
        }
        history.push(History { code, description, diagnosed, resolved, notes: text(&h, &["notes"])? });
    }
    Ok(PatientPart {
        given,
        family,
        birth_date,
        sex,
        mrn,
        mrn_text,
        ssn,
        phone,
        address,
        info,
        allergies,
        medications,
        history,
    })
}

fn build_patient(
    p: PatientPart,
    uid: Uuid,
    email: &Email,
    created_at: DateTime<Utc>,
    s: &mut Sealer<'_>,
    rows: &mut Rows,
) -> Result<(), Fail> {
    let pid = Uuid::now_v7();
    let mrn_bidx = s.mrn_index(p.mrn.as_str());
    let r = &mut rows.patients;
    r.id.push(pid);
    r.user_id.push(uid);
    r.mrn_enc.push(s.seal("patients", "mrn_enc", pid, p.mrn_text.as_bytes())?);
    r.mrn_bidx.push(mrn_bidx.to_vec());
    r.given_name_enc.push(s.seal("patients", "given_name_enc", pid, p.given.as_str().as_bytes())?);
    r.family_name_enc.push(s.seal("patients", "family_name_enc", pid, p.family.as_str().as_bytes())?);
    r.birth_date_enc.push(s.seal("patients", "birth_date_enc", pid, p.birth_date.to_iso_string().as_bytes())?);
    r.sex.push(p.sex.as_str().to_owned());
    r.ssn_enc.push(s.seal_opt("patients", "ssn_enc", pid, p.ssn.as_deref())?);
    r.phone_enc.push(s.seal_opt("patients", "phone_enc", pid, p.phone.as_ref().map(Phone::as_str))?);
    r.address_enc.push(s.seal_opt("patients", "address_enc", pid, p.address.as_deref())?);
    r.created_at.push(created_at);
    // The chart's email, as the clinical API writes it (sealed, org-scoped blind index).
    r.email_bidx.push(s.email_index(email.as_str()).to_vec());
    r.email_enc.push(s.seal("patients", "email_enc", pid, email.as_str().as_bytes())?);
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
