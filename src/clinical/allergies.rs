//! Allergies: substance (plain, so the unique index can refuse a second active allergy to
//! the same substance), reaction (sealed), severity enum.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ClinicalError;
use super::page::{List, Page};
use super::{Req, new_entry, section};
use crate::domain::{ClinicalText, DomainError, Rule, Severity};

const T: &str = "allergies";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewAllergy {
    pub substance: String,
    pub reaction: Option<String>,
    /// mild, moderate, severe, life_threatening.
    pub severity: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Allergy {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub substance: String,
    pub reaction: Option<String>,
    pub severity: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    patient_id: Uuid,
    substance: String,
    reaction_enc: Option<Vec<u8>>,
    severity: String,
    status: String,
    created_at: DateTime<Utc>,
}

const COLS: &str =
    "id, patient_id, substance, reaction_enc, severity::text AS severity, status::text AS status, created_at";

fn open(req: &Req<'_>, r: Row) -> Result<Allergy, ClinicalError> {
    Ok(Allergy {
        reaction: req.open_opt(T, "reaction_enc", r.id, r.reaction_enc.as_deref())?,
        id: r.id,
        patient_id: r.patient_id,
        substance: r.substance,
        severity: r.severity,
        status: r.status,
        created_at: r.created_at,
    })
}

pub(super) fn substance(s: &str, field: &'static str) -> Result<String, ClinicalError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DomainError::new(field, Rule::Empty).into());
    }
    if t.chars().count() > 200 {
        return Err(DomainError::new(field, Rule::TooLong { max: 200 }).into());
    }
    if t.chars().any(char::is_control) {
        return Err(DomainError::new(field, Rule::ControlCharacter).into());
    }
    Ok(t.to_owned())
}

/// A [`NewAllergy`] body, validated: what [`create`] records.
#[derive(Debug)]
pub struct AllergyEntry {
    pub substance: String,
    pub reaction: Option<ClinicalText>,
    pub severity: Severity,
}

impl TryFrom<&NewAllergy> for AllergyEntry {
    type Error = ClinicalError;

    fn try_from(input: &NewAllergy) -> Result<Self, ClinicalError> {
        let substance = substance(&input.substance, "substance")?;
        let severity = Severity::parse(&input.severity)?;
        let reaction = match input.reaction.as_deref() {
            Some(r) => Some(ClinicalText::parse(r).map_err(|e| e.with_field("reaction"))?),
            None => None,
        };
        Ok(Self { substance, reaction, severity })
    }
}

pub async fn create(req: &mut Req<'_>, patient: Uuid, entry: AllergyEntry) -> Result<Allergy, ClinicalError> {
    let AllergyEntry { substance, reaction, severity } = entry;
    let id = new_entry(req, patient).await?;
    let reaction_enc = req.seal_opt(T, "reaction_enc", id, reaction.as_ref().map(|r| r.as_str()))?;
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO allergies (id, org_id, patient_id, substance, reaction_enc, severity, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6::allergy_severity, $7) RETURNING {COLS}"
    )))
    .bind(id)
    .bind(req.user.org_id)
    .bind(patient)
    .bind(&substance)
    .bind(&reaction_enc)
    .bind(severity.as_str())
    .bind(req.user.user_id)
    .fetch_one(req.conn().await?)
    .await?; // a second active allergy to the substance: 409 by the constraint table
    open(req, row)
}

/// Allergies of a patient; `active_only` for the chart.
pub async fn list(
    req: &mut Req<'_>,
    patient: Uuid,
    page: &Page,
    active_only: bool,
) -> Result<List<Allergy>, ClinicalError> {
    section::list::<Allergies>(req, patient, page, active_only).await
}

/// The allergies section of a chart ([`section::Section`]).
pub(crate) struct Allergies;

impl section::Section for Allergies {
    type Row = Row;
    type Item = Allergy;
    const TABLE: &'static str = "allergies";
    const COLS: &'static str = COLS;
    const ACTIVE: &'static str = "status = 'active'";

    fn open(req: &Req<'_>, row: Row) -> Result<Allergy, ClinicalError> {
        open(req, row)
    }

    fn key(a: &Allergy) -> (DateTime<Utc>, Uuid) {
        (a.created_at, a.id)
    }
}
