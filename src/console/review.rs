//! The privacy-monitoring review queue (auditors): the alerts, one alert's rule, evidence and
//! decisions, and recording a decision — `monitoring::review` through the same parsing
//! (`routes::review::filters`) and role rule (`routes::review::reviewer`) as `/v1/review`.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::guard::see_other;
use super::{ConsoleCtx, Page, html};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::monitoring::review::{self, AlertDetail, AlertSummary, OUTCOMES, STATUSES};
use crate::routes::resource;
use crate::routes::review::{ListQuery, filters, reviewer};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/review").route(web::get().to(queue)))
        .service(resource("/review/{id}").route(web::get().to(alert)))
        .service(resource("/review/{id}/decision").route(web::post().to(decide)));
}

#[derive(Template)]
#[template(path = "console/review.html")]
struct QueuePage {
    page: Page,
    items: Vec<AlertSummary>,
    next_cursor: Option<Uuid>,
    status: String,
    statuses: [&'static str; 4],
}

#[derive(Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    cursor: Option<Uuid>,
}

/// `GET /console/review?status=&cursor=`: `monitoring::review::list` (open alerts by default).
pub async fn queue(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let q = q.into_inner();
    let status = q.status.filter(|s| !s.is_empty()).unwrap_or_else(|| "open".to_owned());
    let query =
        ListQuery { status: (status != "all").then(|| status.clone()), cursor: q.cursor, ..ListQuery::default() };
    let f = filters(query)?;
    let (mut tx, actx) = user.begin(&state.pool).await?;
    let page = review::list(&mut tx, &actx, &f).await?;
    tx.commit().await?;
    html(&QueuePage {
        page: Page::for_user(&ctx, &user, "Privacy review", "/console/review"),
        items: page.items,
        next_cursor: page.next_cursor,
        status,
        statuses: STATUSES,
    })
}

#[derive(Template)]
#[template(path = "console/review_alert.html")]
struct AlertPage {
    page: Page,
    d: AlertDetail,
    outcomes: [&'static str; 3],
}

/// `GET /console/review/{id}`: `monitoring::review::get`.
pub async fn alert(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let (mut tx, actx) = user.begin(&state.pool).await?;
    let d = review::get(&mut tx, &actx, &state.crypto, path.into_inner()).await?;
    tx.commit().await?;
    html(&AlertPage { page: Page::for_user(&ctx, &user, "Privacy alert", "/console/review"), d, outcomes: OUTCOMES })
}

#[derive(Deserialize)]
pub struct DecisionForm {
    outcome: String,
    note: Option<String>,
}

/// `POST /console/review/{id}/decision`: `monitoring::review::decide`.
pub async fn decide(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, ApiError> {
    reviewer(&user)?;
    let id = path.into_inner();
    let outcome = OUTCOMES
        .into_iter()
        .find(|o| *o == form.outcome)
        .ok_or_else(|| ApiError::validation("outcome", "must be appropriate, violation or needs_follow_up"))?;
    let note = form.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let (mut tx, actx) = user.begin(&state.pool).await?;
    review::decide(&mut tx, &actx, &state.crypto, (user.org_id, user.user_id), id, outcome, note).await?;
    tx.commit().await?;
    Ok(see_other(&format!("/console/review/{id}")))
}
