//! Builders for the legacy documents, in canonical or relaxed Extended JSON (chosen per
//! document, so an export mixes both like real `mongoexport` runs over time).

use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

use super::data::*;
use super::rng::Rng;

pub fn oid(id: &str) -> Value {
    json!({ "$oid": id })
}

pub fn date(t: DateTime<Utc>, canonical: bool) -> Value {
    if canonical {
        json!({ "$date": { "$numberLong": t.timestamp_millis().to_string() } })
    } else {
        json!({ "$date": t.to_rfc3339_opts(SecondsFormat::Millis, true) })
    }
}

pub fn int(n: i64, canonical: bool) -> Value {
    if canonical { json!({ "$numberInt": n.to_string() }) } else { json!(n) }
}

fn dbl(x: f64, canonical: bool) -> Value {
    if canonical { json!({ "$numberDouble": x.to_string() }) } else { json!(x) }
}

fn bin(bytes: &[u8], canonical: bool) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    if canonical { json!({ "$binary": { "base64": b64, "subType": "00" } }) } else { json!(b64) }
}

pub fn at(rng: &mut Rng, from_year: i32, to_year: i32) -> DateTime<Utc> {
    let start = Utc.with_ymd_and_hms(from_year, 1, 1, 0, 0, 0).single().unwrap_or_default();
    let end = Utc.with_ymd_and_hms(to_year, 12, 31, 0, 0, 0).single().unwrap_or_default();
    start + Duration::seconds(rng.range(0, (end - start).num_seconds()))
}

fn ascii_slug(s: &str, fallback: &str) -> String {
    let slug: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    if slug.is_empty() { fallback.to_owned() } else { slug }
}

/// A staff account (doctor or admin).
pub fn staff(rng: &mut Rng, id: &str, role: &str, n: u64, hash: &str, c: bool) -> (Value, String) {
    let given = *rng.pick(GIVEN);
    let family = *rng.pick(FAMILY);
    let email =
        format!("{}{n}.{}@clinic.example", if role == "doctor" { "dr" } else { "admin" }, ascii_slug(family, "x"));
    let mut doc = json!({
        "_id": oid(id), "email": email, "password": hash, "role": role,
        "firstName": given, "lastName": family, "createdAt": date(at(rng, 2018, 2019), c), "__v": int(0, c),
    });
    if role == "doctor" {
        doc["specialization"] = json!(*rng.pick(&["General practice", "Cardiology", "Pédiatrie", "Dermatology"]));
    }
    (doc, email)
}

/// A patient with demographics and embedded allergies, medications and history.
pub fn patient(rng: &mut Rng, id: &str, n: u64, hash: &str, c: bool) -> (Value, String, DateTime<Utc>) {
    let given = *rng.pick(GIVEN);
    let family = *rng.pick(FAMILY);
    let email = format!("p{n}.{}@mail.example", ascii_slug(family, "patient"));
    let created = at(rng, 2019, 2021);
    let dob = at(rng, 1935, 2015).date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let (city, zip) = *rng.pick(CITIES);
    let mut doc = json!({
        "_id": oid(id), "email": email, "password": hash, "role": "patient",
        "firstName": given, "lastName": family, "dateOfBirth": date(dob, c),
        "gender": *rng.pick(&["female", "male", "other", "F", "M"]),
        "phone": format!("+1 555 {:03} {:04}", rng.below(1000), rng.below(10000)),
        "address": { "street": format!("{} Rue de l'Église", rng.range(1, 200)), "city": city, "zip": zip },
        "bloodType": *rng.pick(&["A+", "A-", "B+", "O+", "O-", "AB+"]),
        "height": dbl((rng.range(1400, 2000) as f64) / 10.0, c),
        "weight": dbl((rng.range(400, 1400) as f64) / 10.0, c),
        "emergencyContact": { "name": format!("{} {}", rng.pick(GIVEN), family), "phone": "+1 555 010 0199", "relationship": "sibling" },
        "createdAt": date(created, c), "__v": int(rng.range(0, 3), c),
    });
    if !n.is_multiple_of(4) {
        doc["mrn"] = json!(format!("MRN-{n:07}"));
    }
    let mut allergies = Vec::new();
    let mut pool: Vec<&str> = ALLERGENS.to_vec();
    for _ in 0..rng.range(0, 2) {
        let i = rng.below(pool.len() as u64) as usize;
        let substance = pool.swap_remove(i);
        allergies.push(
            json!({ "substance": substance, "reaction": *rng.pick(REACTIONS), "severity": *rng.pick(SEVERITIES) }),
        );
    }
    let mut meds = Vec::new();
    for _ in 0..rng.range(0, 2) {
        let (name, dose, route, freq) = *rng.pick(DRUGS);
        let start = created + Duration::days(rng.range(0, 300));
        let mut m =
            json!({ "name": name, "dosage": dose, "route": route, "frequency": freq, "startDate": date(start, c) });
        if rng.chance(0.3) {
            m["notes"] = json!("Patient reports mild nausea.\nReview in 2 weeks.");
        }
        meds.push(m);
    }
    let mut history = Vec::new();
    for _ in 0..rng.range(0, 2) {
        let (code, condition) = *rng.pick(ICD10);
        let dx = created - Duration::days(rng.range(0, 2000));
        let mut h = json!({ "condition": condition, "icd10Code": code, "diagnosedDate": date(dx, c) });
        if rng.chance(0.3) {
            h["resolvedDate"] = date(dx + Duration::days(rng.range(10, 200)), c);
            h["notes"] = json!("Resolved after treatment — no recurrence.");
        }
        history.push(h);
    }
    doc["allergies"] = Value::Array(allergies);
    doc["currentMedications"] = Value::Array(meds);
    doc["medicalHistory"] = Value::Array(history);
    (doc, email, created)
}

/// A conversation between a patient and (usually) a doctor.
pub fn conversation(
    rng: &mut Rng,
    id: &str,
    patient: &str,
    doctor: Option<&str>,
    after: DateTime<Utc>,
    c: bool,
) -> Value {
    let created = after + Duration::days(rng.range(1, 400));
    let status = *rng.pick(&["pending", "active", "closed", "closed"]);
    let mut messages = Vec::new();
    let mut t = created;
    for i in 0..rng.range(1, 5) {
        t += Duration::minutes(rng.range(5, 3000));
        let sender = match doctor {
            Some(d) if i % 2 == 1 => d,
            _ => patient,
        };
        messages.push(
            json!({ "sender": oid(sender), "content": *rng.pick(MESSAGES), "timestamp": date(t, c), "read": true }),
        );
    }
    let symptoms: Vec<Value> = (0..rng.range(0, 2))
        .map(|_| json!({ "name": *rng.pick(SYMPTOMS), "severity": int(rng.range(1, 10), c), "onsetDate": date(created - Duration::days(2), c) }))
        .collect();
    let mut attachments = Vec::new();
    if rng.chance(0.2) {
        let len = rng.range(40, 300) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        attachments.push(json!({
            "filename": *rng.pick(&["scan-é.png", "lab results.pdf", "photo_左腕.jpg"]),
            "contentType": *rng.pick(&["image/png", "application/pdf", "image/jpeg"]),
            "data": bin(&data, c), "size": int(len as i64, c), "uploadedAt": date(created, c),
        }));
    }
    let mut doc = json!({
        "_id": oid(id), "patient": oid(patient), "status": status, "subject": *rng.pick(SUBJECTS),
        "messages": messages, "symptoms": symptoms, "attachments": attachments,
        "createdAt": date(created, c), "updatedAt": date(t, c), "__v": int(0, c),
    });
    if let Some(d) = doctor {
        doc["doctor"] = oid(d);
    }
    doc
}

/// A prescription by `doctor` for `patient`.
pub fn prescription(rng: &mut Rng, id: &str, patient: &str, doctor: &str, after: DateTime<Utc>, c: bool) -> Value {
    let (name, dose, _, _) = *rng.pick(DRUGS);
    let issued = after + Duration::days(rng.range(1, 500));
    let refills = rng.range(0, 5);
    let mut doc = json!({
        "_id": oid(id), "patient": oid(patient), "doctor": oid(doctor), "medication": name, "dosage": dose,
        "quantity": int(rng.range(10, 90), c), "refills": int(refills, c), "refillsUsed": int(rng.range(0, refills), c),
        "instructions": *rng.pick(INSTRUCTIONS), "issuedAt": date(issued, c),
        "expiresAt": date(issued + Duration::days(rng.range(30, 365)), c), "status": "active", "__v": int(0, c),
    });
    if rng.chance(0.1) {
        doc["status"] = json!("cancelled");
        doc["cancelledAt"] = date(issued + Duration::days(3), c);
        doc["cancelReason"] = json!("Patient reported an allergic reaction;\nswitched to an alternative.");
    }
    doc
}

/// An activity-log entry.
pub fn activity(
    rng: &mut Rng,
    id: &str,
    user: &str,
    action: &str,
    resource: Option<(&str, &str)>,
    t: DateTime<Utc>,
    c: bool,
) -> Value {
    let mut doc = json!({
        "_id": oid(id), "user": oid(user), "action": action, "timestamp": date(t, c),
        "ipAddress": format!("10.{}.{}.{}", rng.below(256), rng.below(256), rng.range(1, 254)),
        "userAgent": *rng.pick(USER_AGENTS), "success": true,
    });
    if let Some((rt, rid)) = resource {
        doc["resourceType"] = json!(rt);
        doc["resourceId"] = oid(rid);
    }
    doc
}
