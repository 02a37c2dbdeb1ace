//! The case flow: `/v1/patients/{id}/conversations`, `/v1/conversations[/{id}[/messages|/close]]`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::clinical::{audited, audited_for};
use super::openapi::ErrorBody;
use crate::audit::Action;
use crate::clinical::conversations as conv;
use crate::clinical::page::{List, Page, PageQuery};
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::state::AppState;

type S = web::Data<AppState>;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// pending, active, closed.
    pub status: Option<String>,
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/patients/{id}/conversations", tag = "conversations", operation_id = "create_conversation", params(("id" = Uuid, Path)),
    request_body = conv::NewConversation,
    responses((status = 201, body = conv::Conversation), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<conv::NewConversation>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Create, "conversation", async |r| {
        conv::create(r, id, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(get, path = "/v1/patients/{id}/conversations", tag = "conversations", params(("id" = Uuid, Path), ListQuery),
    responses((status = 200, body = List<conv::Conversation>), (status = 404, body = ErrorBody)))]
pub async fn list_for_patient(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let page = Page::parse(&PageQuery { limit: q.limit, cursor: q.cursor.clone() })?;
    let out = audited_for(&state, &user, id, Action::Read, "conversation", async |r| {
        conv::list(r, Some(id), q.status.as_deref(), &page).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// The clinician's queue (`?status=pending`): conversations of their care-team patients.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations", operation_id = "list_conversations", params(ListQuery),
    responses((status = 200, body = List<conv::Conversation>), (status = 422, body = ErrorBody)))]
pub async fn list(state: S, user: Caller, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&PageQuery { limit: q.limit, cursor: q.cursor.clone() })?;
    let out = audited(&state, &user, Action::Read, "conversation", async |r| {
        conv::list(r, None, q.status.as_deref(), &page).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations", operation_id = "get_conversation", params(("id" = Uuid, Path)),
    responses((status = 200, body = conv::Conversation), (status = 404, body = ErrorBody)))]
pub async fn get(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Read, "conversation", async |r| conv::get(r, id, false).await).await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "conversations", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = List<conv::Message>), (status = 404, body = ErrorBody)))]
pub async fn messages(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, page) = (id.into_inner(), Page::parse(&q)?);
    let out = audited(&state, &user, Action::Read, "message", async |r| conv::messages(r, id, &page).await).await?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "conversations", params(("id" = Uuid, Path)),
    request_body = conv::NewMessage,
    responses((status = 201, body = conv::Message), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn post_message(
    state: S,
    user: Caller,
    id: web::Path<Uuid>,
    body: web::Json<conv::NewMessage>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Create, "message", async |r| {
        conv::post_message(r, id, (&*body).try_into()?).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/close", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = conv::Conversation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn close(state: S, user: Caller, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = audited(&state, &user, Action::Update, "conversation", async |r| conv::close(r, id).await).await?;
    Ok(HttpResponse::Ok().json(out))
}
