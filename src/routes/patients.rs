//! `/v1/patients` and `/v1/patients/{id}` (the chart).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::clinical::{audited, audited_for};
use crate::audit::Action;
use crate::clinical::page::{Page, PageQuery};
use crate::clinical::{chart, patients};
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Exact MRN (looked up through the blind index).
    pub mrn: Option<String>,
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /v1/patients?mrn=&limit=&cursor=`.
#[utoipa::path(get, path = "/v1/patients", tag = "patients", operation_id = "list_patients", params(ListQuery),
    responses((status = 200, body = crate::clinical::page::List<patients::Patient>), (status = 422, body = crate::routes::openapi::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    user: Caller,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&PageQuery { limit: q.limit, cursor: q.cursor.clone() })?;
    let out =
        audited(&state, &user, Action::Read, "patient", async |r| patients::list(r, &page, q.mrn.as_deref()).await)
            .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// `POST /v1/patients` (admins, clinicians; a clinician joins the care team).
#[utoipa::path(post, path = "/v1/patients", tag = "patients", operation_id = "create_patient", request_body = patients::NewPatient,
    responses((status = 201, body = patients::Patient), (status = 409, body = crate::routes::openapi::ErrorBody, description = "MRN already used"), (status = 422, body = crate::routes::openapi::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    user: Caller,
    body: web::Json<patients::NewPatient>,
) -> Result<HttpResponse, ApiError> {
    let out = audited(&state, &user, Action::Create, "patient", async |r| {
        patients::may_create(r)?;
        patients::create(r, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

/// `GET /v1/patients/{id}`: the full chart (demographics only for admins).
#[utoipa::path(get, path = "/v1/patients/{id}", tag = "patients", params(("id" = Uuid, Path)),
    responses((status = 200, body = chart::Chart), (status = 404, body = crate::routes::openapi::ErrorBody)))]
pub async fn chart(state: web::Data<AppState>, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited_for(&state, &user, id, Action::Read, "chart", async |r| chart::get(r, id).await).await?;
    Ok(HttpResponse::Ok().json(out))
}
