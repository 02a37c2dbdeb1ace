//! Admin pages: users (create with the one-time password shown once; disable, enable,
//! unlock, reset MFA, reset passkeys), the organization's sign-in policy, care teams,
//! break-glass grants, ledger and key health. Each action is the API's service (`auth::users`,
//! `auth::passkeys` for the policy, `clinical::care` through `routes::clinical::audited`).

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::guard::see_other;
use super::{ConsoleCtx, Page, html, html_status};
use crate::audit::{self, Action, AuditEvent, Outcome};
use crate::auth::AuthUser;
use crate::auth::passkeys::{self, AuthPolicy};
use crate::auth::users::{self, CreatedUser, UserAction, UserSummary};
use crate::clinical::care::{self, CareTeamChange, CareTeamMember, GrantSummary};
use crate::db::ClaimRole;
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::monitoring::grants::{self, GrantReview};
use crate::routes::clinical::audited;
use crate::routes::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/users").route(web::get().to(users_page)).route(web::post().to(create_user)))
        .service(resource("/users/{id}/{action}").route(web::post().to(user_action)))
        .service(resource("/security").route(web::get().to(security)).route(web::post().to(security_submit)))
        .service(resource("/care-teams").route(web::get().to(care_teams)))
        .service(resource("/care-teams/{patient}/add").route(web::post().to(care_team_add)))
        .service(resource("/care-teams/{patient}/remove/{clinician}").route(web::post().to(care_team_remove)))
        .service(resource("/break-glass").route(web::get().to(break_glass)))
        .service(resource("/health").route(web::get().to(health)));
}

fn admin_only(user: &AuthUser) -> Result<(), ApiError> {
    Ok(user.require_role(&[ClaimRole::Admin])?)
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    page: Page,
    users: Vec<UserSummary>,
    next_after: Option<Uuid>,
    created: Option<CreatedUser>,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    after: Option<Uuid>,
    done: Option<String>,
}

async fn users_view(
    state: &AppState,
    ctx: &ConsoleCtx,
    user: &AuthUser,
    after: Option<Uuid>,
) -> Result<UsersPage, ApiError> {
    let list = users::list(state, user, 100, after).await?;
    Ok(UsersPage {
        page: Page::for_user(ctx, user, "Users", "/console/users"),
        users: list.users,
        next_after: list.next_after,
        created: None,
        error: None,
        notice: None,
    })
}

/// `GET /console/users`: `auth::users::list`.
pub async fn users_page(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    q: web::Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&user)?;
    let mut view = users_view(&state, &ctx, &user, q.after).await?;
    view.notice = match q.done.as_deref() {
        Some("disable") => Some("The account is disabled and its sessions are ended.".into()),
        Some("enable") => Some("The account is enabled.".into()),
        Some("unlock") => Some("The account is unlocked.".into()),
        Some("reset-mfa") => Some("Two-factor sign-in was reset; the user enrols again at next sign-in.".into()),
        Some("reset-passkeys") => Some(
            "The passkeys were reset: every passkey of the account is deleted and its sessions are ended. The user \
             signs in with their other factor and registers a new passkey."
                .into(),
        ),
        _ => None,
    };
    html(&view)
}

#[derive(Deserialize)]
pub struct CreateForm {
    email: String,
    role: String,
    display_name: String,
}

/// `POST /console/users`: `auth::users::create`. The one-time password is in this response
/// only (never stored in plain text, never cached: `no-store`).
pub async fn create_user(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&user)?;
    let result = users::create(&state, &user, form.email.trim(), &form.role, form.display_name.trim())
        .await
        .map_err(ApiError::from);
    match result {
        Ok(created) => {
            let mut view = users_view(&state, &ctx, &user, None).await?;
            view.created = Some(created);
            html(&view)
        }
        Err(e @ (ApiError::Validation { .. } | ApiError::Conflict(_))) => {
            let status = actix_web::ResponseError::status_code(&e);
            let mut view = users_view(&state, &ctx, &user, None).await?;
            view.error = Some(e.to_string());
            html_status(status, &view)
        }
        Err(e) => Err(e),
    }
}

/// `POST /console/users/{id}/{disable|enable|unlock|reset-mfa|reset-passkeys}`:
/// `auth::users::act`, as `POST /v1/admin/users/{id}/{action}` does. (Reset passkeys is
/// confirmed in the page before this form is sent.)
pub async fn user_action(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = path.into_inner();
    let parsed = UserAction::parse(&action).ok_or(ApiError::NotFound)?;
    users::act(&state, &user, id, parsed).await?;
    Ok(see_other(&format!("/console/users?done={action}")))
}

#[derive(Template)]
#[template(path = "console/security.html")]
struct SecurityPage {
    page: Page,
    policy: AuthPolicy,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct SecurityQuery {
    done: Option<String>,
}

/// `GET /console/security`: the organization's sign-in policy, `auth::passkeys::get_policy`
/// (admins; the read and any refusal are recorded by the service, as for
/// `GET /v1/admin/auth-policy`).
pub async fn security(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    q: web::Query<SecurityQuery>,
) -> Result<HttpResponse, ApiError> {
    let policy = passkeys::get_policy(&state, &user).await?;
    html(&SecurityPage {
        page: Page::for_user(&ctx, &user, "Sign-in policy", "/console/security"),
        policy,
        notice: (q.done.as_deref() == Some("saved")).then_some("The sign-in policy is saved."),
    })
}

/// The policy form: a checkbox is sent only when it is ticked.
#[derive(Deserialize)]
pub struct SecurityForm {
    require_phishing_resistant: Option<String>,
    allow_passwordless: Option<String>,
}

/// `POST /console/security`: `auth::passkeys::set_policy`, as `PUT /v1/admin/auth-policy`
/// does (the change is recorded with the old and new values). Under the policy, a session
/// not opened with a passkey is restricted to enrolling one, so it cannot reach this: the
/// refusal is the extractor's, recorded by the audit wrapper, and the guard's page says why.
pub async fn security_submit(
    state: web::Data<AppState>,
    user: AuthUser,
    form: web::Form<SecurityForm>,
) -> Result<HttpResponse, ApiError> {
    let new = AuthPolicy {
        require_phishing_resistant: form.require_phishing_resistant.is_some(),
        allow_passwordless: form.allow_passwordless.is_some(),
    };
    passkeys::set_policy(&state, &user, new).await?;
    Ok(see_other("/console/security?done=saved"))
}

#[derive(Template)]
#[template(path = "console/care_teams.html")]
struct CareTeamsPage {
    page: Page,
    patient: Option<Uuid>,
    members: Vec<CareTeamMember>,
    clinicians: Vec<UserSummary>,
}

#[derive(Deserialize)]
pub struct CareQuery {
    patient: Option<String>,
}

/// `GET /console/care-teams?patient=<id>`: `clinical::care::list`, and the organization's
/// clinicians to add (`auth::users::list`).
pub async fn care_teams(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    caller: Caller,
    q: web::Query<CareQuery>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&user)?;
    let patient = match q.patient.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| ApiError::validation("patient", "must be a patient id"))?),
    };
    let members = match patient {
        Some(p) => audited(&state, &caller, Action::Read, "care_team", async |r| care::list(r, p).await).await?,
        None => Vec::new(),
    };
    let clinicians = if patient.is_some() {
        users::list(&state, &user, 200, None).await?.users.into_iter().filter(|u| u.role == "clinician").collect()
    } else {
        Vec::new()
    };
    html(&CareTeamsPage {
        page: Page::for_user(&ctx, &user, "Care teams", "/console/care-teams"),
        patient,
        members,
        clinicians,
    })
}

#[derive(Deserialize)]
pub struct AddForm {
    clinician_id: Uuid,
}

/// `POST /console/care-teams/{patient}/add`: `clinical::care::add`.
pub async fn care_team_add(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    form: web::Form<AddForm>,
) -> Result<HttpResponse, ApiError> {
    let p = path.into_inner();
    let change = CareTeamChange { clinician_id: form.clinician_id };
    audited(&state, &caller, Action::Admin, "care_team", async |r| care::add(r, p, &change).await).await?;
    Ok(see_other(&format!("/console/care-teams?patient={p}")))
}

/// `POST /console/care-teams/{patient}/remove/{clinician}`: `clinical::care::remove`.
pub async fn care_team_remove(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (p, c) = path.into_inner();
    audited(&state, &caller, Action::Admin, "care_team", async |r| care::remove(r, p, c).await).await?;
    Ok(see_other(&format!("/console/care-teams?patient={p}")))
}

/// One grant and where it stands in the review queue.
pub struct GrantRow {
    pub g: GrantSummary,
    pub review: Option<GrantReview>,
}

#[derive(Template)]
#[template(path = "console/break_glass.html")]
struct BreakGlassPage {
    page: Page,
    now: DateTime<Utc>,
    grants: Vec<GrantRow>,
    /// Auditors get links into the review queue.
    reviewer: bool,
}

/// `GET /console/break-glass`: `clinical::care::list_grants`, newest first, each with its
/// review state (`monitoring::grants`), in one audited read. Admins and auditors.
pub async fn break_glass(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    user.require_role(&[ClaimRole::Admin, ClaimRole::Auditor])?;
    let org = user.org_id;
    let (grants, reviews) = audited(&state, &caller, Action::Read, "break_glass_grant", async |r| {
        let list = care::list_grants(r, 200).await?;
        let keys: Vec<(Uuid, Uuid)> = list.iter().map(|g| (g.id, g.patient_id)).collect();
        let reviews = grants::reviews(r.conn().await?, org, &keys).await?;
        Ok((list, reviews))
    })
    .await?;
    let now = state.clock.now();
    let grants = grants
        .into_iter()
        .map(|g| {
            let review = reviews.get(&g.id).cloned();
            GrantRow { g, review }
        })
        .collect();
    html(&BreakGlassPage {
        page: Page::for_user(&ctx, &user, "Break-glass grants", "/console/break-glass"),
        now,
        grants,
        reviewer: user.role == ClaimRole::Auditor,
    })
}

/// One data-key version.
#[derive(sqlx::FromRow)]
pub struct KeyRow {
    pub version: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    /// Sealed values of this organization under this version.
    #[sqlx(skip)]
    pub sealed: i64,
}

/// Where `custos keys rewrap` stands for this organization.
pub struct RewrapProgress {
    pub total: i64,
    /// Values under a version older than the current one.
    pub pending: i64,
    /// Share already under the current version, in tenths of a percent.
    pub done_permille: i64,
}

#[derive(Template)]
#[template(path = "console/health.html")]
struct HealthPage {
    page: Page,
    ledger: Vec<(String, String)>,
    current_key: i32,
    keys: Vec<KeyRow>,
    rewrap: RewrapProgress,
}

/// `GET /console/health`: the ledger's state as `/readyz` reports it (inbox depth, lag,
/// unsigned entries, last checkpoint) and the data-key versions. Recorded as a read.
pub async fn health(state: web::Data<AppState>, ctx: ConsoleCtx, user: AuthUser) -> Result<HttpResponse, ApiError> {
    admin_only(&user)?;
    let ledger = crate::routes::health::ledger_details(&state).await;
    let ledger = match ledger {
        serde_json::Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| {
                let label = k.replace('_', " ");
                let value = match v {
                    serde_json::Value::Null => "none yet".to_owned(),
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (label, value)
            })
            .collect(),
        _ => Vec::new(),
    };
    let (mut tx, ctx_audit) = user.begin(&state.pool).await?;
    let mut keys: Vec<KeyRow> = sqlx::query_as(
        "SELECT version, status::text AS status, created_at, retired_at FROM encryption_keys ORDER BY version DESC",
    )
    .fetch_all(&mut *tx)
    .await?;
    // Counts only, of this organization (policies/85_console.sql).
    let counts: Vec<(i32, i64)> =
        sqlx::query_as("SELECT version, sum(sealed)::bigint FROM custos.rewrap_progress() GROUP BY 1 ORDER BY 1")
            .fetch_all(&mut *tx)
            .await?;
    let current_key = state.crypto.keyring.current_version().as_i32();
    for k in &mut keys {
        k.sealed = counts.iter().filter(|(v, _)| *v == k.version).map(|(_, n)| n).sum();
    }
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let pending: i64 = counts.iter().filter(|(v, _)| *v != current_key).map(|(_, n)| n).sum();
    let done_permille = if total == 0 { 1000 } else { (total - pending) * 1000 / total };
    let rewrap = RewrapProgress { total, pending, done_permille };
    let event = AuditEvent::new(Action::Read, "encryption_key", Outcome::Success).reason("ledger and key health");
    audit::record(&mut tx, &ctx_audit, &event).await?;
    tx.commit().await?;
    html(&HealthPage {
        page: Page::for_user(&ctx, &user, "Ledger and key health", "/console/health"),
        ledger,
        current_key,
        keys,
        rewrap,
    })
}
