//! The chart: demographics plus medical info, active allergies and medications, history and
//! active prescriptions in one response — and `PUT …/medical-info`. Admins get the
//! demographics only (minimum necessary): the clinical sections are absent, not empty.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::error::ClinicalError;
use super::page::{Page, PageQuery};
use super::patients::{self, Patient};
use super::{Access, Req, allergies, history, medications, open_rows, prescriptions, require, section};
use crate::db::{BoundQuery, ClaimRole};
use crate::domain::{BloodType, ClinicalText, HeightCm, WeightKg};

const T: &str = "patient_medical_info";

#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct MedicalInfo {
    /// a_pos, a_neg, b_pos, b_neg, ab_pos, ab_neg, o_pos, o_neg, unknown (A+ style accepted).
    pub blood_type: Option<String>,
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
    pub emergency_contact: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Chart {
    #[serde(flatten)]
    pub patient: Patient,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medical_info: Option<MedicalInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allergies: Option<Vec<allergies::Allergy>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medications: Option<Vec<medications::Medication>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<history::Diagnosis>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prescriptions: Option<Vec<prescriptions::Prescription>>,
}

/// The whole chart (each section capped at 100 rows; the list endpoints page further).
///
/// The sections' queries and the success event's audit INSERT go to PostgreSQL as one
/// pipeline ([`Req::pipeline`]), which is also the request's first: `BEGIN`, the claims, the
/// patient scope and the session check travel with it, so a chart read is two round trips —
/// this one and `COMMIT`. The queries run in order in the request's transaction, each under
/// RLS exactly as when run alone, and only if the session check admitted the caller; if the
/// chart turns out unreadable after all (no such patient, a field that fails to open), the
/// transaction is rolled back, event included, and the refusal is recorded on its own
/// ([`Req::finish`]). An admin's or auditor's chart queries the demographics only.
pub async fn get(req: &mut Req<'_>, id: Uuid) -> Result<Chart, ClinicalError> {
    if matches!(req.user.role, ClaimRole::Admin | ClaimRole::Auditor) {
        return Ok(Chart {
            patient: patients::get(req, id).await?,
            medical_info: None,
            allergies: None,
            medications: None,
            history: None,
            prescriptions: None,
        });
    }
    let page = Page::parse(&PageQuery { limit: Some(100), cursor: None })?;
    let queries = [
        patients::get_query(req, id),
        medical_info_query(id),
        section::list_query::<allergies::Allergies>(id, &page, true),
        section::list_query::<medications::Medications>(id, &page, true),
        section::list_query::<history::History>(id, &page, false),
        section::list_query::<prescriptions::Prescriptions>(id, &page, true),
        req.success_event_query(),
    ];
    let results = req.pipeline(queries).await?;
    let [patient, info, allergies, medications, history, prescriptions, _audit] = &results[..] else {
        return Err(ClinicalError::Internal(anyhow::anyhow!(
            "chart pipeline: {} results for 7 queries",
            results.len()
        )));
    };
    Ok(Chart {
        patient: patients::get_row(req, patient)?,
        medical_info: Some(medical_info_row(req, info)?.unwrap_or_default()),
        allergies: Some(section::list_page::<allergies::Allergies>(req, allergies, &page)?.items),
        medications: Some(section::list_page::<medications::Medications>(req, medications, &page)?.items),
        history: Some(section::list_page::<history::History>(req, history, &page)?.items),
        prescriptions: Some(section::list_page::<prescriptions::Prescriptions>(req, prescriptions, &page)?.items),
    })
}

async fn medical_info(req: &mut Req<'_>, patient: Uuid) -> Result<Option<MedicalInfo>, ClinicalError> {
    let rows = medical_info_query(patient).fetch_all(req.conn().await?).await?;
    medical_info_row(req, &rows)
}

fn medical_info_query(patient: Uuid) -> BoundQuery {
    sqlx::query(
        "SELECT id, blood_type::text, height_cm::float8, weight_kg::float8, emergency_contact_enc \
         FROM patient_medical_info WHERE patient_id = $1",
    )
    .bind(patient)
}

fn medical_info_row(req: &Req<'_>, rows: &[PgRow]) -> Result<Option<MedicalInfo>, ClinicalError> {
    type R = (Uuid, String, Option<f64>, Option<f64>, Option<Vec<u8>>);
    let open = |req: &Req<'_>, (id, blood, height, weight, contact): R| -> Result<MedicalInfo, ClinicalError> {
        Ok(MedicalInfo {
            blood_type: Some(blood),
            height_cm: height,
            weight_kg: weight,
            emergency_contact: req.open_opt(T, "emergency_contact_enc", id, contact.as_deref())?,
        })
    };
    Ok(open_rows(req, rows, open)?.into_iter().next())
}

/// `GET /v1/patients/{id}/medical-info`.
pub async fn get_medical_info(req: &mut Req<'_>, patient: Uuid) -> Result<MedicalInfo, ClinicalError> {
    require(req, patient, Access::Read).await?;
    Ok(medical_info(req, patient).await?.unwrap_or_default())
}

/// `PUT /v1/patients/{id}/medical-info`: replaces the record (absent fields become empty).
/// A [`MedicalInfo`] body, validated: what [`put_medical_info`] stores.
#[derive(Debug)]
pub struct MedicalInfoEntry {
    pub blood: BloodType,
    pub height: Option<HeightCm>,
    pub weight: Option<WeightKg>,
    pub contact: Option<ClinicalText>,
}

impl TryFrom<&MedicalInfo> for MedicalInfoEntry {
    type Error = ClinicalError;

    fn try_from(input: &MedicalInfo) -> Result<Self, ClinicalError> {
        let blood = input.blood_type.as_deref().map(BloodType::parse).transpose()?.unwrap_or(BloodType::Unknown);
        let height = input.height_cm.map(HeightCm::new).transpose()?;
        let weight = input.weight_kg.map(WeightKg::new).transpose()?;
        let contact = input
            .emergency_contact
            .as_deref()
            .map(ClinicalText::parse)
            .transpose()
            .map_err(|e| e.with_field("emergency_contact"))?;
        Ok(Self { blood, height, weight, contact })
    }
}

pub async fn put_medical_info(
    req: &mut Req<'_>,
    patient: Uuid,
    entry: MedicalInfoEntry,
) -> Result<MedicalInfo, ClinicalError> {
    let MedicalInfoEntry { blood, height, weight, contact } = entry;
    require(req, patient, Access::Write).await?;
    let existing: Option<Uuid> = sqlx::query_scalar("SELECT id FROM patient_medical_info WHERE patient_id = $1")
        .bind(patient)
        .fetch_optional(req.conn().await?)
        .await?;
    let id = existing.unwrap_or_else(Uuid::now_v7);
    req.resource(id);
    let contact_enc = req.seal_opt(T, "emergency_contact_enc", id, contact.as_ref().map(|c| c.as_str()))?;
    sqlx::query(
        "INSERT INTO patient_medical_info (id, org_id, patient_id, blood_type, height_cm, weight_kg, emergency_contact_enc, updated_by) \
         VALUES ($1, $2, $3, $4::blood_type, $5::float8::numeric, $6::float8::numeric, $7, $8) \
         ON CONFLICT (patient_id) DO UPDATE SET blood_type = EXCLUDED.blood_type, height_cm = EXCLUDED.height_cm, \
         weight_kg = EXCLUDED.weight_kg, emergency_contact_enc = EXCLUDED.emergency_contact_enc, updated_by = EXCLUDED.updated_by",
    )
    .bind(id)
    .bind(req.user.org_id)
    .bind(patient)
    .bind(blood.as_str())
    .bind(height.map(HeightCm::get))
    .bind(weight.map(WeightKg::get))
    .bind(&contact_enc)
    .bind(req.user.user_id)
    .execute(req.conn().await?)
    .await?;
    Ok(medical_info(req, patient).await?.unwrap_or_default())
}
