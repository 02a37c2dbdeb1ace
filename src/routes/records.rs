//! Chart sections: medical info, allergies, medications, medical history.

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::clinical::{audited, audited_for};
use super::openapi::ErrorBody;
use crate::audit::Action;
use crate::clinical::page::{List, Page, PageQuery};
use crate::clinical::{allergies, chart, history, medications};
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::state::AppState;

type S = web::Data<AppState>;

#[utoipa::path(get, path = "/v1/patients/{id}/medical-info", tag = "chart", params(("id" = Uuid, Path)),
    responses((status = 200, body = chart::MedicalInfo), (status = 404, body = ErrorBody)))]
pub async fn get_medical_info(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out =
        audited_for(&state, &user, id, Action::Read, "medical_info", async |r| chart::get_medical_info(r, id).await)
            .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(put, path = "/v1/patients/{id}/medical-info", tag = "chart", params(("id" = Uuid, Path)), request_body = chart::MedicalInfo,
    responses((status = 200, body = chart::MedicalInfo), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_medical_info(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<chart::MedicalInfo>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Update, "medical_info", async |r| {
        chart::put_medical_info(r, id, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(get, path = "/v1/patients/{id}/allergies", tag = "chart", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = List<allergies::Allergy>), (status = 404, body = ErrorBody)))]
pub async fn list_allergies(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, page) = (id.into_inner(), Page::parse(&q)?);
    let out = audited_for(&state, &user, id, Action::Read, "allergy", async |r| {
        crate::clinical::require(r, id, crate::clinical::Access::Read).await?;
        allergies::list(r, id, &page, false).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/patients/{id}/allergies", tag = "chart", params(("id" = Uuid, Path)), request_body = allergies::NewAllergy,
    responses((status = 201, body = allergies::Allergy), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_allergy(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<allergies::NewAllergy>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Create, "allergy", async |r| {
        allergies::create(r, id, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(get, path = "/v1/patients/{id}/medications", tag = "chart", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = List<medications::Medication>, description = "history included"), (status = 404, body = ErrorBody)))]
pub async fn list_medications(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, page) = (id.into_inner(), Page::parse(&q)?);
    let out = audited_for(&state, &user, id, Action::Read, "medication", async |r| {
        crate::clinical::require(r, id, crate::clinical::Access::Read).await?;
        medications::list(r, id, &page, false).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/patients/{id}/medications", tag = "chart", params(("id" = Uuid, Path)), request_body = medications::NewMedication,
    responses((status = 201, body = medications::Medication), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_medication(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<medications::NewMedication>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Create, "medication", async |r| {
        medications::create(r, id, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(post, path = "/v1/patients/{id}/medications/{mid}/end", tag = "chart",
    params(("id" = Uuid, Path), ("mid" = Uuid, Path)), request_body = medications::EndMedication,
    responses((status = 200, body = medications::Medication), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn end_medication(
    state: S,
    user: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<medications::EndMedication>,
) -> Result<HttpResponse, ApiError> {
    let (id, mid) = path.into_inner();
    let out = audited(&state, &user, Action::Update, "medication", async |r| {
        medications::end(r, id, mid, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(get, path = "/v1/patients/{id}/history", tag = "chart", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = List<history::Diagnosis>), (status = 404, body = ErrorBody)))]
pub async fn list_history(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, page) = (id.into_inner(), Page::parse(&q)?);
    let out = audited_for(&state, &user, id, Action::Read, "diagnosis", async |r| {
        crate::clinical::require(r, id, crate::clinical::Access::Read).await?;
        history::list(r, id, &page).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/patients/{id}/history", tag = "chart", params(("id" = Uuid, Path)), request_body = history::NewDiagnosis,
    responses((status = 201, body = history::Diagnosis), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_history(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<history::NewDiagnosis>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Create, "diagnosis", async |r| {
        history::create(r, id, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}
