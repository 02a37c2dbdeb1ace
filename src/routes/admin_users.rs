//! `/v1/admin/users*`: an admin manages the accounts of their own organization.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::auth::users::{self, UserAction};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateBody {
    email: String,
    role: String,
    display_name: String,
}

/// `POST /v1/admin/users`.
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let created = users::create(&state, &user, &body.email, &body.role, &body.display_name).await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    after: Option<Uuid>,
}

/// `GET /v1/admin/users?limit=1..200&after=<id>`.
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

/// `POST /v1/admin/users/{id}/{disable|enable|unlock|reset-mfa}`.
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
