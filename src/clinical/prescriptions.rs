//! Prescriptions: only clinicians with access prescribe (RLS says so too); expiry defaults
//! to one year after issue and may not exceed it; refills only while active, unexpired and
//! remaining (409 with the reason otherwise); cancellation needs a reason (sealed).
//! A prescription past its expiry is reported as `expired` whatever its stored status.

use chrono::{DateTime, Duration, Months, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::allergies::substance as short_text;
use super::error::ClinicalError;
use super::page::{List, Page};
use super::{Access, Req, require, section};
use crate::db::ClaimRole;
use crate::domain::{ClinicalText, Dosage, Quantity, Refills};

const T: &str = "prescriptions";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewPrescription {
    pub medication: String,
    /// Amount and unit, e.g. `500 mg`.
    pub dose: String,
    pub quantity: i64,
    pub refills_allowed: i64,
    pub instructions: Option<String>,
    /// RFC 3339 or YYYY-MM-DD; at most one year after issue; default one year.
    pub expires_at: Option<String>,
    /// Dosage form, e.g. `capsule`, `tablet`, `oral solution`.
    pub form: Option<String>,
    /// DEA schedule of a controlled substance: `II`, `III`, `IV` or `V` (absent: not
    /// controlled). Refused (422, field `schedule`) unless the prescriber's profile holds a
    /// DEA number.
    pub schedule: Option<String>,
}

/// A DEA schedule as text (`II`…`V`) and as stored (2…5).
pub fn parse_schedule(s: &str) -> Option<i16> {
    match s.trim().to_ascii_uppercase().trim_start_matches('C') {
        "II" | "2" => Some(2),
        "III" | "3" => Some(3),
        "IV" | "4" => Some(4),
        "V" | "5" => Some(5),
        _ => None,
    }
}

/// The schedule as printed: `CII`…`CV`.
pub fn schedule_label(n: i16) -> &'static str {
    match n {
        2 => "CII",
        3 => "CIII",
        4 => "CIV",
        _ => "CV",
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CancelPrescription {
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Prescription {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub prescriber_id: Uuid,
    pub medication: String,
    pub dose: String,
    pub quantity: i32,
    pub refills_allowed: i16,
    pub refills_used: i16,
    pub instructions: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// active, completed, cancelled, expired.
    pub status: String,
    pub form: Option<String>,
    /// DEA schedule (`CII`…`CV`) of a controlled substance.
    pub schedule: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    patient_id: Uuid,
    prescriber_id: Uuid,
    medication: String,
    dose: String,
    quantity: i32,
    refills_allowed: i16,
    refills_used: i16,
    instructions_enc: Option<Vec<u8>>,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    status: String,
    form: Option<String>,
    schedule: Option<i16>,
    cancelled_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

const COLS: &str = "id, patient_id, prescriber_id, medication, dose, quantity, refills_allowed, refills_used, \
    instructions_enc, issued_at, expires_at, \
    (CASE WHEN status = 'active' AND expires_at <= now() THEN 'expired' ELSE status::text END) AS status, \
    form, schedule, cancelled_at, created_at";

fn open(req: &Req<'_>, r: Row) -> Result<Prescription, ClinicalError> {
    Ok(Prescription {
        instructions: req.open_opt(T, "instructions_enc", r.id, r.instructions_enc.as_deref())?,
        id: r.id,
        patient_id: r.patient_id,
        prescriber_id: r.prescriber_id,
        medication: r.medication,
        dose: r.dose,
        quantity: r.quantity,
        refills_allowed: r.refills_allowed,
        refills_used: r.refills_used,
        issued_at: r.issued_at,
        expires_at: r.expires_at,
        status: r.status,
        form: r.form,
        schedule: r.schedule.map(|n| schedule_label(n).to_owned()),
        cancelled_at: r.cancelled_at,
        created_at: r.created_at,
    })
}

fn parse_expiry(input: &str, issued: DateTime<Utc>) -> Result<DateTime<Utc>, ClinicalError> {
    let bad = || ClinicalError::validation("expires_at", "must be an RFC 3339 timestamp or a date as YYYY-MM-DD");
    let t = input.trim();
    let at = match DateTime::parse_from_rfc3339(t) {
        Ok(dt) => dt.with_timezone(&Utc),
        Err(_) => NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| bad())?.and_time(NaiveTime::MIN).and_utc(),
    };
    if at <= issued {
        return Err(ClinicalError::validation("expires_at", "must be after the issue time"));
    }
    if at > one_year_after(issued) {
        return Err(ClinicalError::validation("expires_at", "must be at most one year after issue"));
    }
    Ok(at)
}

fn one_year_after(t: DateTime<Utc>) -> DateTime<Utc> {
    // Feb 29 + 1 year has no exact match; fall back to 365 days (always within the limit).
    t.checked_add_months(Months::new(12)).unwrap_or(t + Duration::days(365))
}

/// A [`NewPrescription`] body, validated: what [`create`] records. The issue time is taken
/// here, so the expiry is checked against it.
#[derive(Debug)]
pub struct PrescriptionEntry {
    pub medication: String,
    pub dose: Dosage,
    pub quantity: i32,
    pub refills: Refills,
    pub instructions: Option<ClinicalText>,
    pub issued: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub form: Option<String>,
    /// The DEA schedule as stored (2…5).
    pub schedule: Option<i16>,
}

impl TryFrom<&NewPrescription> for PrescriptionEntry {
    type Error = ClinicalError;

    fn try_from(input: &NewPrescription) -> Result<Self, ClinicalError> {
        let medication = short_text(&input.medication, "medication")?;
        let dose = Dosage::parse(&input.dose)?;
        let quantity = Quantity::new(input.quantity)?;
        let quantity = i32::try_from(quantity.get()).map_err(|_| ClinicalError::validation("quantity", "too large"))?;
        let refills = Refills::new(input.refills_allowed)?;
        let instructions = input
            .instructions
            .as_deref()
            .map(ClinicalText::parse)
            .transpose()
            .map_err(|e| e.with_field("instructions"))?;
        // Issue time is the database's clock at insert; validate against ours (same host clock
        // in practice) and let the CHECK constraint be the last word.
        let issued = Utc::now();
        let expires = match input.expires_at.as_deref() {
            Some(e) => parse_expiry(e, issued)?,
            None => one_year_after(issued),
        };
        let form = input.form.as_deref().map(|f| short_text(f, "form")).transpose()?;
        let schedule = match input.schedule.as_deref() {
            Some(s) => Some(
                parse_schedule(s).ok_or_else(|| ClinicalError::validation("schedule", "must be II, III, IV or V"))?,
            ),
            None => None,
        };
        Ok(Self { medication, dose, quantity, refills, instructions, issued, expires, form, schedule })
    }
}

pub async fn create(req: &mut Req<'_>, patient: Uuid, entry: PrescriptionEntry) -> Result<Prescription, ClinicalError> {
    let PrescriptionEntry { medication, dose, quantity, refills, instructions, issued, expires, form, schedule } =
        entry;
    if !req.is(ClaimRole::Clinician) {
        // Only clinicians prescribe; to anyone else the resource does not exist.
        return Err(ClinicalError::NotFound);
    }
    require(req, patient, Access::Write).await?;
    if schedule.is_some() {
        let me = req.user.user_id;
        let prescriber = super::prescribers::get(req.conn().await?, me).await?;
        if prescriber.and_then(|p| p.dea_number).is_none() {
            return Err(ClinicalError::validation(
                "schedule",
                "a controlled substance needs the prescriber's DEA number on file (staff profile)",
            ));
        }
    }
    let id = Uuid::now_v7();
    req.resource(id);
    let instructions_enc = req.seal_opt(T, "instructions_enc", id, instructions.as_ref().map(|i| i.as_str()))?;
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO prescriptions (id, org_id, patient_id, prescriber_id, medication, dose, quantity, refills_allowed, \
         instructions_enc, issued_at, expires_at, form, schedule) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13) RETURNING {COLS}"
    )))
    .bind(id)
    .bind(req.user.org_id)
    .bind(patient)
    .bind(req.user.user_id)
    .bind(&medication)
    .bind(dose.to_string())
    .bind(quantity)
    .bind(i16::from(refills.get()))
    .bind(&instructions_enc)
    .bind(issued)
    .bind(expires)
    .bind(&form)
    .bind(schedule)
    .fetch_one(req.conn().await?)
    .await?;
    open(req, row)
}

/// One prescription (locked `FOR UPDATE` when `lock`), noting its patient on the event.
async fn load(req: &mut Req<'_>, id: Uuid, lock: bool) -> Result<Prescription, ClinicalError> {
    req.resource(id);
    let sql = format!("SELECT {COLS} FROM prescriptions WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(req.conn().await?).await?;
    let row = row.ok_or(ClinicalError::NotFound)?;
    req.patient(row.patient_id);
    open(req, row)
}

pub async fn get(req: &mut Req<'_>, id: Uuid) -> Result<Prescription, ClinicalError> {
    load(req, id, false).await
}

/// Why a refill is refused, if it is.
pub fn refill_refusal(p: &Prescription) -> Option<String> {
    match p.status.as_str() {
        "active" if p.refills_used >= p.refills_allowed => {
            Some(format!("no refills remain ({} of {} used)", p.refills_used, p.refills_allowed))
        }
        "active" => None,
        "expired" => Some(format!("the prescription expired at {}", p.expires_at.to_rfc3339())),
        other => Some(format!("the prescription is {other}")),
    }
}

pub async fn refill(req: &mut Req<'_>, id: Uuid) -> Result<Prescription, ClinicalError> {
    let p = load(req, id, true).await?;
    require(req, p.patient_id, Access::Write).await?;
    if let Some(reason) = refill_refusal(&p) {
        return Err(ClinicalError::Conflict(reason));
    }
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE prescriptions SET refills_used = refills_used + 1, \
         status = CASE WHEN refills_used + 1 >= refills_allowed THEN 'completed'::prescription_status ELSE status END \
         WHERE id = $1 RETURNING {COLS}"
    )))
    .bind(id)
    .fetch_one(req.conn().await?)
    .await?;
    open(req, row)
}

/// A [`CancelPrescription`] body, validated: the reason (sealed when stored).
#[derive(Debug)]
pub struct Cancellation {
    pub reason: ClinicalText,
}

impl TryFrom<&CancelPrescription> for Cancellation {
    type Error = ClinicalError;

    fn try_from(input: &CancelPrescription) -> Result<Self, ClinicalError> {
        Ok(Self { reason: ClinicalText::parse_non_empty(&input.reason).map_err(|e| e.with_field("reason"))? })
    }
}

pub async fn cancel(req: &mut Req<'_>, id: Uuid, input: Cancellation) -> Result<Prescription, ClinicalError> {
    let Cancellation { reason } = input;
    let p = load(req, id, true).await?;
    require(req, p.patient_id, Access::Write).await?;
    if matches!(p.status.as_str(), "cancelled" | "completed") {
        return Err(ClinicalError::Conflict(format!("the prescription is already {}", p.status)));
    }
    let reason_enc = req.seal(T, "cancel_reason_enc", id, reason.as_str())?;
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE prescriptions SET status = 'cancelled', cancelled_at = now(), cancel_reason_enc = $2 \
         WHERE id = $1 RETURNING {COLS}"
    )))
    .bind(id)
    .bind(&reason_enc)
    .fetch_one(req.conn().await?)
    .await?;
    open(req, row)
}

pub async fn list(
    req: &mut Req<'_>,
    patient: Uuid,
    page: &Page,
    active_only: bool,
) -> Result<List<Prescription>, ClinicalError> {
    section::list::<Prescriptions>(req, patient, page, active_only).await
}

/// The prescriptions section of a chart ([`section::Section`]).
pub(crate) struct Prescriptions;

impl section::Section for Prescriptions {
    type Row = Row;
    type Item = Prescription;
    const TABLE: &'static str = "prescriptions";
    const COLS: &'static str = COLS;
    const ACTIVE: &'static str = "status = 'active' AND expires_at > now()";

    fn open(req: &Req<'_>, row: Row) -> Result<Prescription, ClinicalError> {
        open(req, row)
    }

    fn key(p: &Prescription) -> (DateTime<Utc>, Uuid) {
        (p.created_at, p.id)
    }
}

/// The PDF of a prescription, audited as an export by the caller.
pub async fn pdf(req: &mut Req<'_>, id: Uuid) -> Result<(Vec<u8>, String), ClinicalError> {
    let p = load(req, id, false).await?;
    let patient = super::patients::get(req, p.patient_id).await?;
    // `patients::get` noted the patient id as a resource too; keep the event's ids tidy.
    req.ev.resource_ids.truncate(1);
    let prescriber = super::prescribers::get(req.conn().await?, p.prescriber_id).await?;
    let sheet = sheet(&p, &patient, prescriber.as_ref());
    crate::telemetry::spawn_blocking_in_span(move || super::pdf::render(&sheet)).await.map_err(ClinicalError::internal)
}

/// What a printed prescription shows (docs: `src/clinical/pdf.rs`): the prescription, its
/// patient and its prescriber's profile, formatted. `None` for the prescriber: printed as not
/// on file, and not signed.
pub fn sheet(
    p: &Prescription,
    patient: &super::patients::Patient,
    prescriber: Option<&super::prescribers::Prescriber>,
) -> super::pdf::PrescriptionSheet {
    use super::pdf::number_words;
    let none = "none on file".to_owned();
    let name = prescriber.map(|r| match &r.credentials {
        Some(c) => format!("{}, {c}", r.full_name),
        None => r.full_name.clone(),
    });
    let words = |n: i64| number_words(u64::try_from(n).unwrap_or(0));
    super::pdf::PrescriptionSheet {
        prescription_id: p.id.to_string(),
        date_written: p.issued_at.format("%Y-%m-%d").to_string(),
        expires: p.expires_at.format("%Y-%m-%d").to_string(),
        status: p.status.clone(),
        prescriber: name.clone().unwrap_or_else(|| format!("{} (no prescriber profile on file)", p.prescriber_id)),
        npi: prescriber.map_or_else(|| none.clone(), |r| r.npi.as_str().to_owned()),
        dea: prescriber.and_then(|r| r.dea_number.as_ref()).map_or_else(|| none.clone(), |d| d.as_str().to_owned()),
        practice: prescriber.map_or_else(|| none.clone(), |r| r.practice_name.clone()),
        practice_address: prescriber.map_or_else(|| none.clone(), |r| r.practice_address.clone()),
        practice_phone: prescriber.map_or_else(|| none.clone(), |r| r.practice_phone.as_str().to_owned()),
        patient_name: format!("{} {}", patient.given_name, patient.family_name),
        patient_birth_date: patient.birth_date.to_string(),
        patient_address: patient.address.clone().unwrap_or_else(|| none.clone()),
        patient_mrn: patient.mrn.clone(),
        drug: p.medication.clone(),
        strength: p.dose.clone(),
        form: p.form.clone().unwrap_or_else(|| "not specified".to_owned()),
        schedule: p.schedule.clone().unwrap_or_else(|| "not controlled".to_owned()),
        directions: p.instructions.clone().unwrap_or_default(),
        quantity: format!("{} ({})", p.quantity, words(i64::from(p.quantity))),
        refills: format!(
            "{} ({}) allowed, {} used",
            p.refills_allowed,
            words(i64::from(p.refills_allowed)),
            p.refills_used
        ),
        signed_by: prescriber.map(|r| {
            (
                format!("{} (NPI {})", name.clone().unwrap_or_default(), r.npi.as_str()),
                p.issued_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
        }),
    }
}
