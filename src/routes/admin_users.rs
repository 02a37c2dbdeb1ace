//! `/v1/admin/users*`: an admin manages the accounts of their own organization.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::auth::users::{self, UserAction};
use crate::error::ApiError;
use crate::routes::openapi::ErrorBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    email: String,
    /// clinician, admin or auditor.
    role: String,
    display_name: String,
}

/// `POST /v1/admin/users`.
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", operation_id = "create_user", request_body = CreateBody,
    responses((status = 201, body = users::CreatedUser, description = "the user and a one-time password"), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "email already used"), (status = 422, body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let created = users::create(&state, &user, &body.email, &body.role, &body.display_name).await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_after` of the previous page.
    after: Option<Uuid>,
}

/// `GET /v1/admin/users?limit=1..200&after=<id>`.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", operation_id = "list_users", params(ListQuery),
    responses((status = 200, body = users::UserPage, description = "users of the admin's organization"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 200"));
    }
    Ok(HttpResponse::Ok().json(users::list(&state, &user, limit, query.after).await?))
}

/// `POST /v1/admin/users/{id}/{disable|enable|unlock|reset-mfa|reset-passkeys}`.
#[utoipa::path(post, path = "/v1/admin/users/{id}/{action}", tag = "admin", operation_id = "user_action",
    params(("id" = Uuid, Path), ("action" = String, Path, description = "disable, enable, unlock, reset-mfa or reset-passkeys (deletes every passkey of the user and ends their sessions)")),
    responses((status = 204, description = "done"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such user in the organization, or no such action"),
        (status = 409, body = ErrorBody)))]
pub async fn act(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = path.into_inner();
    let action = UserAction::parse(&action).ok_or(ApiError::NotFound)?;
    users::act(&state, &user, id, action).await?;
    Ok(HttpResponse::NoContent().finish())
}
