//! Care teams (admins assign clinicians to patients) and break-glass (a clinician's
//! time-limited, justified, flagged access to a patient outside their care team).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Req;
use crate::db::ClaimRole;
use crate::domain::Reason;
use crate::error::ApiError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CareTeamChange {
    pub clinician_id: Uuid,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CareTeamMember {
    pub clinician_id: Uuid,
    pub added_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BreakGlassRequest {
    /// Why, in at least 20 characters. Read by auditors; keep clinical details out of it.
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakGlassGrant {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub clinician_id: Uuid,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The patient exists in the caller's org and the caller (an admin) sees it.
async fn admin_patient(req: &mut Req<'_>, patient: Uuid) -> Result<(), ApiError> {
    req.patient(patient);
    if !req.is(ClaimRole::Admin) {
        return Err(ApiError::NotFound);
    }
    let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM patients WHERE id = $1")
        .bind(patient)
        .fetch_optional(req.conn().await?)
        .await?;
    found.map(|_| ()).ok_or(ApiError::NotFound)
}

pub async fn list(req: &mut Req<'_>, patient: Uuid) -> Result<Vec<CareTeamMember>, ApiError> {
    admin_patient(req, patient).await?;
    let rows: Vec<(Uuid, Option<Uuid>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT clinician_id, added_by, created_at FROM care_team_members WHERE patient_id = $1 ORDER BY created_at, id",
    )
    .bind(patient)
    .fetch_all(req.conn().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(clinician_id, added_by, created_at)| CareTeamMember { clinician_id, added_by, created_at })
        .collect())
}

pub async fn add(req: &mut Req<'_>, patient: Uuid, input: &CareTeamChange) -> Result<CareTeamMember, ApiError> {
    admin_patient(req, patient).await?;
    req.resource(input.clinician_id);
    let role: Option<String> = sqlx::query_scalar("SELECT role::text FROM users WHERE id = $1 AND status = 'active'")
        .bind(input.clinician_id)
        .fetch_optional(req.conn().await?)
        .await?;
    if role.as_deref() != Some("clinician") {
        return Err(ApiError::validation("clinician_id", "must be an active clinician of your organization"));
    }
    let row: Option<(Uuid, Option<Uuid>, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO care_team_members (org_id, patient_id, clinician_id, added_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (patient_id, clinician_id) DO NOTHING RETURNING clinician_id, added_by, created_at",
    )
    .bind(req.user.org_id)
    .bind(patient)
    .bind(input.clinician_id)
    .bind(req.user.user_id)
    .fetch_optional(req.conn().await?)
    .await?;
    let (clinician_id, added_by, created_at) =
        row.ok_or_else(|| ApiError::Conflict("the clinician is already on this care team".into()))?;
    Ok(CareTeamMember { clinician_id, added_by, created_at })
}

pub async fn remove(req: &mut Req<'_>, patient: Uuid, clinician: Uuid) -> Result<(), ApiError> {
    admin_patient(req, patient).await?;
    req.resource(clinician);
    let n = sqlx::query("DELETE FROM care_team_members WHERE patient_id = $1 AND clinician_id = $2")
        .bind(patient)
        .bind(clinician)
        .execute(req.conn().await?)
        .await?
        .rows_affected();
    if n == 0 { Err(ApiError::NotFound) } else { Ok(()) }
}

/// Grants the calling clinician `CUSTOS_BREAK_GLASS_MINUTES` of access to `patient`.
pub async fn break_glass(
    req: &mut Req<'_>,
    patient: Uuid,
    input: &BreakGlassRequest,
) -> Result<BreakGlassGrant, ApiError> {
    let reason = Reason::parse(&input.reason)?;
    req.patient(patient);
    if !req.is(ClaimRole::Clinician) {
        return Err(ApiError::NotFound);
    }
    let minutes = req.state.settings.clinical.break_glass_minutes;
    let row: Result<(Uuid, DateTime<Utc>, DateTime<Utc>), sqlx::Error> = sqlx::query_as(
        "INSERT INTO break_glass_grants (org_id, patient_id, clinician_id, reason, granted_at, expires_at) \
         VALUES ($1, $2, $3, $4, now(), now() + make_interval(mins => $5)) RETURNING id, granted_at, expires_at",
    )
    .bind(req.user.org_id)
    .bind(patient)
    .bind(req.user.user_id)
    .bind(reason.as_str())
    .bind(i32::try_from(minutes).unwrap_or(60))
    .fetch_one(req.conn().await?)
    .await;
    let (id, granted_at, expires_at) = match row {
        Ok(r) => r,
        // No such patient in this organization: the foreign key says so, the client hears 404.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23503") => return Err(ApiError::NotFound),
        Err(e) => return Err(e.into()),
    };
    req.resource(id);
    req.ev.break_glass = true;
    req.ev.reason = Some(reason.as_str().to_owned());
    Ok(BreakGlassGrant { id, patient_id: patient, clinician_id: req.user.user_id, granted_at, expires_at })
}

/// A break-glass grant as an admin reviews it: live or past, with its reason.
#[derive(Debug, Serialize)]
pub struct GrantSummary {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub clinician_id: Uuid,
    pub reason: String,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The organization's break-glass grants, newest first (admins; RLS confines them to the
/// organization). At most `limit`.
pub async fn list_grants(req: &mut Req<'_>, limit: i64) -> Result<Vec<GrantSummary>, ApiError> {
    if !req.is(ClaimRole::Admin) {
        return Err(ApiError::Forbidden { code: "forbidden", message: "your role may not do this".into() });
    }
    type Row = (Uuid, Uuid, Uuid, String, DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, patient_id, clinician_id, reason, granted_at, expires_at, revoked_at \
         FROM break_glass_grants WHERE org_id = $1 ORDER BY granted_at DESC, id LIMIT $2",
    )
    .bind(req.user.org_id)
    .bind(limit)
    .fetch_all(req.conn().await?)
    .await?;
    req.ev.reason = Some(format!("break-glass grant list ({} rows)", rows.len()));
    Ok(rows
        .into_iter()
        .map(|(id, patient_id, clinician_id, reason, granted_at, expires_at, revoked_at)| GrantSummary {
            id,
            patient_id,
            clinician_id,
            reason,
            granted_at,
            expires_at,
            revoked_at,
        })
        .collect())
}
