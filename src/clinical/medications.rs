//! Medications with history: ending one sets `end_date` and a final status and keeps the row.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::allergies::substance as short_text;
use super::error::ClinicalError;
use super::page::{List, Page};
use super::{Access, Req, new_entry, require, section};
use crate::domain::{ClinicalText, Dosage, DoseUnit, MedicationRoute, parse_date};

const T: &str = "medications";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewMedication {
    pub name: String,
    pub dose: f64,
    /// mg, g, mcg, mL, L, units, IU, tablet, …
    pub unit: String,
    /// oral, iv, im, subcutaneous, topical, inhaled, …
    pub route: String,
    pub frequency: String,
    /// YYYY-MM-DD
    pub start_date: String,
    pub end_date: Option<String>,
    pub notes: Option<String>,
}

/// `POST …/medications/{id}/end`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EndMedication {
    /// Defaults to today.
    pub end_date: Option<String>,
    /// completed (default) or stopped.
    pub status: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Medication {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub name: String,
    pub dose: f64,
    pub unit: String,
    pub route: String,
    pub frequency: String,
    #[schema(value_type = String, format = Date)]
    pub start_date: NaiveDate,
    #[schema(value_type = Option<String>, format = Date)]
    pub end_date: Option<NaiveDate>,
    pub status: String,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    patient_id: Uuid,
    name: String,
    dose: f64,
    unit: String,
    route: String,
    frequency: String,
    start_date: NaiveDate,
    end_date: Option<NaiveDate>,
    status: String,
    notes_enc: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
}

const COLS: &str = "id, patient_id, name, dose::float8 AS dose, unit, route::text AS route, frequency, start_date, \
                    end_date, status::text AS status, notes_enc, created_at";

fn open(req: &Req<'_>, r: Row) -> Result<Medication, ClinicalError> {
    Ok(Medication {
        notes: req.open_opt(T, "notes_enc", r.id, r.notes_enc.as_deref())?,
        id: r.id,
        patient_id: r.patient_id,
        name: r.name,
        dose: r.dose,
        unit: r.unit,
        route: r.route,
        frequency: r.frequency,
        start_date: r.start_date,
        end_date: r.end_date,
        status: r.status,
        created_at: r.created_at,
    })
}

/// A [`NewMedication`] body, validated: what [`create`] records.
#[derive(Debug)]
pub struct MedicationEntry {
    pub name: String,
    pub dose: Dosage,
    pub route: MedicationRoute,
    pub frequency: String,
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
    pub notes: Option<ClinicalText>,
}

impl TryFrom<&NewMedication> for MedicationEntry {
    type Error = ClinicalError;

    fn try_from(input: &NewMedication) -> Result<Self, ClinicalError> {
        let name = short_text(&input.name, "name")?;
        let unit = DoseUnit::parse(&input.unit)?;
        let dose = Dosage::new(input.dose, unit)?;
        let route = MedicationRoute::parse(&input.route)?;
        let frequency = short_text(&input.frequency, "frequency")?;
        if frequency.chars().count() > 100 {
            return Err(ClinicalError::validation("frequency", "must be at most 100 characters"));
        }
        let start = parse_date("start_date", &input.start_date)?;
        let end = input.end_date.as_deref().map(|d| parse_date("end_date", d)).transpose()?;
        if end.is_some_and(|e| e < start) {
            return Err(ClinicalError::validation("end_date", "must not be before start_date"));
        }
        let notes = input.notes.as_deref().map(ClinicalText::parse).transpose().map_err(|e| e.with_field("notes"))?;
        Ok(Self { name, dose, route, frequency, start, end, notes })
    }
}

pub async fn create(req: &mut Req<'_>, patient: Uuid, entry: MedicationEntry) -> Result<Medication, ClinicalError> {
    let MedicationEntry { name, dose, route, frequency, start, end, notes } = entry;
    let id = new_entry(req, patient).await?;
    let notes_enc = req.seal_opt(T, "notes_enc", id, notes.as_ref().map(|n| n.as_str()))?;
    let status = if end.is_some() { "completed" } else { "active" };
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO medications (id, org_id, patient_id, name, dose, unit, route, frequency, start_date, end_date, \
         status, notes_enc, recorded_by) VALUES ($1, $2, $3, $4, $5::float8::numeric, $6, $7::medication_route, $8, $9, \
         $10, $11::medication_status, $12, $13) RETURNING {COLS}"
    )))
    .bind(id)
    .bind(req.user.org_id)
    .bind(patient)
    .bind(&name)
    .bind(dose.value())
    .bind(dose.unit().as_str())
    .bind(route.as_str())
    .bind(&frequency)
    .bind(start)
    .bind(end)
    .bind(status)
    .bind(&notes_enc)
    .bind(req.user.user_id)
    .fetch_one(req.conn().await?)
    .await?;
    open(req, row)
}

/// Ends an active medication; the row stays as history.
/// An [`EndMedication`] body, validated: the final status and, if given, the end date.
#[derive(Debug)]
pub struct MedicationEnd {
    pub status: &'static str,
    pub end: Option<NaiveDate>,
}

impl TryFrom<&EndMedication> for MedicationEnd {
    type Error = ClinicalError;

    fn try_from(input: &EndMedication) -> Result<Self, ClinicalError> {
        let status = match input.status.as_deref().map(str::trim) {
            None | Some("completed") => "completed",
            Some("stopped") => "stopped",
            Some(_) => return Err(ClinicalError::validation("status", "must be one of: completed, stopped")),
        };
        let end = match input.end_date.as_deref() {
            Some(d) => Some(parse_date("end_date", d)?),
            None => None,
        };
        Ok(Self { status, end })
    }
}

pub async fn end(
    req: &mut Req<'_>,
    patient: Uuid,
    id: Uuid,
    input: MedicationEnd,
) -> Result<Medication, ClinicalError> {
    req.resource(id);
    let MedicationEnd { status, end } = input;
    require(req, patient, Access::Write).await?;
    let current: Option<(String, NaiveDate)> =
        sqlx::query_as("SELECT status::text, start_date FROM medications WHERE id = $1 AND patient_id = $2")
            .bind(id)
            .bind(patient)
            .fetch_optional(req.conn().await?)
            .await?;
    let (cur_status, start) = current.ok_or(ClinicalError::NotFound)?;
    if cur_status != "active" {
        return Err(ClinicalError::Conflict(format!("medication is already {cur_status}")));
    }
    let end = end.unwrap_or_else(|| Utc::now().date_naive().max(start));
    if end < start {
        return Err(ClinicalError::validation("end_date", "must not be before start_date"));
    }
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE medications SET end_date = $3, status = $4::medication_status WHERE id = $1 AND patient_id = $2 \
         RETURNING {COLS}"
    )))
    .bind(id)
    .bind(patient)
    .bind(end)
    .bind(status)
    .fetch_one(req.conn().await?)
    .await?;
    open(req, row)
}

pub async fn list(
    req: &mut Req<'_>,
    patient: Uuid,
    page: &Page,
    active_only: bool,
) -> Result<List<Medication>, ClinicalError> {
    section::list::<Medications>(req, patient, page, active_only).await
}

/// The medications section of a chart ([`section::Section`]).
pub(crate) struct Medications;

impl section::Section for Medications {
    type Row = Row;
    type Item = Medication;
    const TABLE: &'static str = "medications";
    const COLS: &'static str = COLS;
    const ACTIVE: &'static str = "status = 'active'";

    fn open(req: &Req<'_>, row: Row) -> Result<Medication, ClinicalError> {
        open(req, row)
    }

    fn key(m: &Medication) -> (DateTime<Utc>, Uuid) {
        (m.created_at, m.id)
    }
}
