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
use crate::routes::openapi::ErrorBody;
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

pub fn reviewer(user: &AuthUser) -> Result<(), ApiError> {
    if user.role == ClaimRole::Auditor {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "reviewer_role_required",
            message: "only auditors review privacy alerts".into(),
        })
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// A detector code (docs/privacy-monitoring.md).
    pub detector: Option<String>,
    /// open, needs_follow_up, appropriate or violation.
    pub status: Option<String>,
    pub actor: Option<Uuid>,
    pub patient: Option<Uuid>,
    /// Alerts with evidence at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Alerts with evidence before this time.
    pub to: Option<DateTime<Utc>>,
    /// 1 to 200 (50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

/// `GET /v1/review/alerts`.
#[utoipa::path(get, path = "/v1/review/alerts", tag = "privacy review", params(ListQuery),
    responses((status = 200, description = "`{items: [{id, detector, patient_id, actor_id, first_seen, last_seen, event_count, status}], next_cursor}`, newest first"),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let filters = filters(q.into_inner())?;
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let page = review::list(&mut tx, &ctx, &filters).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The typed filters of a list query (also the console's review page).
pub fn filters(q: ListQuery) -> Result<Filters, ApiError> {
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
    Ok(Filters {
        detector,
        status,
        actor: q.actor,
        patient: q.patient,
        from: q.from,
        to: q.to,
        limit,
        cursor: q.cursor,
    })
}

/// `GET /v1/review/alerts/{id}`.
#[utoipa::path(get, path = "/v1/review/alerts/{id}", tag = "privacy review", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the alert, its `rule`, its `evidence` (ledger entries with `ledger_index`, `explanation`, `missing_explanations`) and its `decisions`"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let detail = review::get(&mut tx, &ctx, &state.crypto, path.into_inner()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// appropriate, violation or needs_follow_up.
    outcome: String,
    /// Sealed; never written to the ledger. At most 4000 characters.
    note: Option<String>,
}

/// `POST /v1/review/alerts/{id}/decision`.
#[utoipa::path(post, path = "/v1/review/alerts/{id}/decision", tag = "privacy review", params(("id" = Uuid, Path)), request_body = DecisionBody,
    responses((status = 201, description = "`{id, reviewer_id, outcome, note, event_id, supersedes, decided_at}`: the decision and the ledger event recording it"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
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
#[utoipa::path(get, path = "/v1/review/metrics", tag = "privacy review",
    responses((status = 200, description = "`{open_by_age, open_by_detector, decisions_per_reviewer, explained_share: [{day, accesses, explained, explained_share}]}`"),
        (status = 403, body = ErrorBody)))]
pub async fn metrics(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let now = state.clock.now();
    let (mut tx, ctx) = user.begin(&state.pool).await?;
    let m = review::metrics(&mut tx, &ctx, now).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(m))
}

/// The OpenAPI paths of the privacy-monitoring routes (merged into `/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    get,
    decide,
    metrics,
    super::profiles::put_profile,
    super::profiles::put_flags,
    super::profiles::put_working_hours
))]
pub struct MonitoringDoc;

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
