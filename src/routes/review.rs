//! The privacy review queue over HTTP (docs/privacy-monitoring.md): auditors list alerts,
//! read their evidence, record decisions, and read the review metrics. Query strings and
//! bodies become typed filters here; `monitoring::review` queries, records and audits.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::ClaimRole;
use crate::error::ApiError;
use crate::monitoring::MonitorError;
use crate::monitoring::detectors::Detector;
use crate::monitoring::review::{self, Filters, OUTCOMES, STATUSES};
use crate::startup::AppState;

impl From<MonitorError> for ApiError {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::Invalid { field, message } => ApiError::validation(field, message),
            MonitorError::NotFound => ApiError::NotFound,
            MonitorError::Forbidden => {
                ApiError::Forbidden { code: "forbidden", message: "your role may not do this".into() }
            }
            MonitorError::Db(e) => ApiError::from(e),
            MonitorError::Crypto(e) => ApiError::internal(e),
        }
    }
}

fn reviewer(user: &AuthUser) -> Result<(), ApiError> {
    if user.role == ClaimRole::Auditor {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "reviewer_role_required",
            message: "only auditors review privacy alerts".into(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    detector: Option<String>,
    status: Option<String>,
    actor: Option<Uuid>,
    patient: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<Uuid>,
}

/// `GET /v1/review/alerts`.
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let q = q.into_inner();
    let detector = q
        .detector
        .as_deref()
        .map(|d| Detector::parse(d).ok_or_else(|| ApiError::validation("detector", "unknown detector code")))
        .transpose()?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            STATUSES.into_iter().find(|k| *k == s).ok_or_else(|| {
                ApiError::validation("status", "must be open, needs_follow_up, appropriate or violation")
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 200"));
    }
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f >= t
    {
        return Err(ApiError::validation("to", "must be after from"));
    }
    let filters = Filters {
        detector,
        status,
        actor: q.actor,
        patient: q.patient,
        from: q.from,
        to: q.to,
        limit,
        cursor: q.cursor,
    };
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let page = review::list(&mut tx, &ctx, &filters).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1/review/alerts/{id}`.
pub async fn get(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let detail = review::get(&mut tx, &ctx, &state.crypto, path.into_inner()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    outcome: String,
    note: Option<String>,
}

/// `POST /v1/review/alerts/{id}/decision`.
pub async fn decide(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let outcome = OUTCOMES
        .into_iter()
        .find(|o| *o == body.outcome)
        .ok_or_else(|| ApiError::validation("outcome", "must be appropriate, violation or needs_follow_up"))?;
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let d = review::decide(
        &mut tx,
        &ctx,
        &state.crypto,
        (user.org_id, user.user_id),
        path.into_inner(),
        outcome,
        body.note.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(d))
}

/// `GET /v1/review/metrics`.
pub async fn metrics(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let m = review::metrics(&mut tx, &ctx, now).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(m))
}

/// Registers the review and admin-facts routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    cfg.service(resource("/v1/review/alerts").route(web::get().to(list)))
        .service(resource("/v1/review/alerts/{id}").route(web::get().to(get)))
        .service(resource("/v1/review/alerts/{id}/decision").route(web::post().to(decide)))
        .service(resource("/v1/review/metrics").route(web::get().to(metrics)))
        .service(resource("/v1/admin/users/{id}/profile").route(web::put().to(super::profiles::put_profile)))
        .service(resource("/v1/patients/{id}/flags").route(web::put().to(super::profiles::put_flags)))
        .service(
            resource("/v1/admin/organization/working-hours").route(web::put().to(super::profiles::put_working_hours)),
        );
}
