//! The facts privacy monitoring needs, kept by admins (docs/privacy-monitoring.md):
//! `PUT /v1/admin/users/{id}/profile`, `PUT /v1/patients/{id}/flags`,
//! `PUT /v1/admin/organization/working-hours`. Bodies become domain values here; the services
//! in `monitoring::profiles` seal, store and audit.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::clinical::prescribers::{self, PrescriberInput};
use crate::db::ClaimRole;
use crate::error::ApiError;
use crate::monitoring::hours::WorkingHours;
use crate::monitoring::profiles::{self, Admin, StaffProfile};
use crate::routes::openapi::ErrorBody;
use crate::state::AppState;

fn admin(user: &AuthUser) -> Result<Admin, ApiError> {
    user.require_role(&[ClaimRole::Admin])?;
    Ok(Admin { org_id: user.org_id, user_id: user.user_id })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// Sealed; compared through a blind index of its normalized form. Absent: cleared.
    family_name: Option<String>,
    /// Sealed; compared through a blind index of its normalized form. Absent: cleared.
    address: Option<String>,
    /// The patient record that is this employee.
    patient_id: Option<Uuid>,
    /// A clinician's prescriber profile, printed on their prescriptions. Absent: cleared.
    prescriber: Option<PrescriberInput>,
}

/// `PUT /v1/admin/users/{id}/profile`.
#[utoipa::path(put, path = "/v1/admin/users/{id}/profile", tag = "privacy review", params(("id" = Uuid, Path)), request_body = ProfileBody,
    responses((status = 200, body = ProfileAnswer, description = "values are never echoed"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_profile(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<ProfileBody>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&user)?;
    let body = body.into_inner();
    let prescriber = body.prescriber.as_ref().map(PrescriberInput::parse).transpose()?.flatten();
    let input = StaffProfile { family_name: body.family_name, address: body.address, patient_id: body.patient_id };
    let target = path.into_inner();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let out = profiles::put_staff_profile(&mut tx, &ctx, &state.crypto, admin, target, &input).await?;
    prescribers::put(&mut tx, &ctx, admin.org_id, admin.user_id, target, prescriber.as_ref()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ProfileAnswer {
        user_id: out.user_id,
        family_name_set: out.family_name_set,
        address_set: out.address_set,
        patient_id: out.patient_id,
        prescriber_set: prescriber.is_some(),
    }))
}

/// What a profile change set (values are never echoed).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProfileAnswer {
    pub user_id: Uuid,
    pub family_name_set: bool,
    pub address_set: bool,
    pub patient_id: Option<Uuid>,
    /// A prescriber profile (name, NPI, DEA, practice) is on file.
    pub prescriber_set: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagsBody {
    confidential: bool,
    /// `YYYY-MM-DD`, not in the future; sealed.
    deceased_on: Option<String>,
}

/// `PUT /v1/patients/{id}/flags`.
#[utoipa::path(put, path = "/v1/patients/{id}/flags", tag = "privacy review", params(("id" = Uuid, Path)), request_body = FlagsBody,
    responses((status = 200, body = profiles::PatientFlagsSet),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_flags(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<FlagsBody>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&user)?;
    let deceased_on = body
        .deceased_on
        .as_deref()
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| ApiError::validation("deceased_on", "must be a date YYYY-MM-DD"))?;
    let today = state.clock.now().date_naive();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let out = profiles::put_patient_flags(
        &mut tx,
        &ctx,
        &state.crypto,
        admin,
        path.into_inner(),
        profiles::PatientFlags { confidential: body.confidential, deceased_on },
        today,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursBody {
    /// An IANA time zone (`Europe/Paris`).
    time_zone: String,
    /// `{"mon": ["08:00", "18:00"], …}`; a missing day is closed.
    days: BTreeMap<String, Vec<String>>,
}

/// `PUT /v1/admin/organization/working-hours`.
#[utoipa::path(put, path = "/v1/admin/organization/working-hours", tag = "privacy review", request_body = HoursBody,
    responses((status = 200, body = profiles::WorkingHoursSet), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_working_hours(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<HoursBody>,
) -> Result<HttpResponse, ApiError> {
    let admin = admin(&user)?;
    let hours = WorkingHours::parse(&body.days).map_err(|e| ApiError::validation(e.field, e.message))?;
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let out = profiles::put_working_hours(&mut tx, &ctx, admin, &body.time_zone, &hours).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(out))
}
