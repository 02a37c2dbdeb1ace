//! The auditor's pages: the event browser (filters, newest-first cursor pages), one event with
//! "Verify in this browser", the checkpoint history with consistency checks, and exports as
//! downloads. The checking itself is done by the browser (`assets/console/js/tlog-verify.js`,
//! driven by `auditor.js`) against a verifier key the auditor pinned there; the server only
//! hands over the event, the signed checkpoints and the proofs, through the same handlers as
//! the API (`/console/ledger/…` = `routes::audit`), so every read is audited the same way.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::{ConsoleCtx, Page, html};
use crate::audit::formats::event_json;
use crate::audit::proofs::{self, StoredCheckpoint};
use crate::audit::query::{self, EventFilter, TimeCursor};
use crate::audit::store::LogRow;
use crate::audit::{Action, AuditEvent, Outcome};
use crate::auth::AuthUser;
use crate::db::ClaimRole;
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::routes::audit::LedgerReader;
use crate::state::AppState;

/// Rows per page of the event browser (bench/console_events.rs measures this size).
pub const PAGE_SIZE: i64 = 50;

const ACTIONS: &[&str] = &[
    "read",
    "create",
    "update",
    "delete",
    "login",
    "login_failed",
    "logout",
    "mfa",
    "refresh",
    "export",
    "break_glass",
    "admin",
    "import",
    "security",
    "key_management",
];
const OUTCOMES: &[&str] = &["success", "denied", "error"];

/// Registers the auditor pages and the same-origin ledger endpoints their scripts call.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::routes::resource;
    cfg.service(resource("/events").route(web::get().to(events)))
        .service(resource("/events/{seq}").route(web::get().to(event)))
        .service(resource("/checkpoints").route(web::get().to(checkpoints)))
        .service(resource("/exports").route(web::get().to(exports)))
        .service(resource("/ledger/checkpoint").route(web::get().to(crate::routes::audit::checkpoint)))
        .service(resource("/ledger/proofs/inclusion").route(web::get().to(crate::routes::audit::inclusion)))
        .service(resource("/ledger/proofs/consistency").route(web::get().to(crate::routes::audit::consistency)))
        .service(resource("/ledger/export").route(web::get().to(crate::routes::audit_export::export)))
        .service(resource("/ledger/bundle").route(web::get().to(crate::routes::audit_bundle::bundle)));
}

/// The event browser's form, as the browser sends it (empty fields are "any").
#[derive(Debug, Default, Deserialize)]
pub struct EventsForm {
    patient: Option<String>,
    /// A patient's MRN instead of their id (looked up, and the look-up recorded).
    mrn: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    break_glass: Option<String>,
    before: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn uuid_field(field: &str, s: &Option<String>) -> Result<Option<Uuid>, ApiError> {
    non_empty(s)
        .map(|v| Uuid::parse_str(v).map_err(|_| ApiError::validation(field, "must be an id (UUID)")))
        .transpose()
}

fn enum_field<T: serde::de::DeserializeOwned>(field: &str, s: &Option<String>) -> Result<Option<T>, ApiError> {
    non_empty(s)
        .map(|v| {
            serde_json::from_value(serde_json::Value::String(v.to_owned()))
                .map_err(|_| ApiError::validation(field, "is not one of the listed values"))
        })
        .transpose()
}

/// `datetime-local` (`2026-12-02T14:30`, seconds optional), read as UTC, or RFC 3339.
fn time_field(field: &str, s: &Option<String>) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let Some(v) = non_empty(s) else { return Ok(None) };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(ApiError::validation(field, "must be a date and time (UTC)"))
}

impl EventsForm {
    fn filter(&self) -> Result<(EventFilter, Option<TimeCursor>), ApiError> {
        let break_glass = match non_empty(&self.break_glass) {
            None => None,
            Some("yes") => Some(true),
            Some("no") => Some(false),
            Some(_) => return Err(ApiError::validation("break_glass", "must be yes, no or empty")),
        };
        let (from, to) = (time_field("from", &self.from)?, time_field("to", &self.to)?);
        crate::routes::audit::time_range(from, to)?;
        let before = non_empty(&self.before)
            .map(|c| TimeCursor::parse(c).ok_or_else(|| ApiError::validation("before", "invalid cursor")))
            .transpose()?;
        let f = EventFilter {
            patient: uuid_field("patient", &self.patient)?,
            actor: uuid_field("actor", &self.actor)?,
            action: enum_field::<Action>("action", &self.action)?,
            outcome: enum_field::<Outcome>("outcome", &self.outcome)?,
            from,
            to,
            break_glass,
            after: None,
            limit: PAGE_SIZE,
        };
        Ok((f, before))
    }

    /// The query string of the same filters with another cursor (for the "older" link); a
    /// patient found by MRN is named by id, so the next page is not another look-up.
    fn with_before(&self, before: &str, patient: Option<Uuid>) -> String {
        let patient = patient.map(|p| p.to_string()).or_else(|| self.patient.clone());
        let mut out = url_pairs(&[
            ("patient", &patient),
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
            ("break_glass", &self.break_glass),
        ]);
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str("before=");
        out.push_str(before);
        out
    }
}

/// `k=v&…` of the non-empty values, percent-encoded.
pub(super) fn url_pairs(pairs: &[(&str, &Option<String>)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if let Some(v) = non_empty(v) {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            for b in v.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// One row of the event table.
pub struct EventRow {
    pub seq: i64,
    pub occurred_at: String,
    pub actor: String,
    pub actor_role: String,
    pub action: String,
    pub resource: String,
    pub patient: String,
    pub outcome: String,
    pub break_glass: bool,
}

impl From<&LogRow> for EventRow {
    fn from(r: &LogRow) -> Self {
        let e = &r.event;
        let id = |u: Option<Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
        let mut patient = id(e.patient_id);
        if patient.is_empty() && !e.patient_ids.is_empty() {
            patient = format!("{} patients", e.patient_ids.len());
        }
        Self {
            seq: r.seq,
            occurred_at: e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor: id(e.actor_id),
            actor_role: e.actor_role.clone().unwrap_or_default(),
            action: e.action.clone(),
            resource: e.resource_type.clone(),
            patient,
            outcome: e.outcome.clone(),
            break_glass: e.break_glass,
        }
    }
}

#[derive(Template)]
#[template(path = "console/events.html")]
struct EventsPage<'a> {
    page: Page,
    form: &'a EventsForm,
    rows: Vec<EventRow>,
    older: Option<String>,
    /// An MRN was given and names no patient of the organization.
    no_such_mrn: bool,
    actions: &'static [&'static str],
    outcomes: &'static [&'static str],
}

impl EventsPage<'_> {
    fn value<'s>(&self, s: &'s Option<String>) -> &'s str {
        s.as_deref().unwrap_or("")
    }
}

/// The caller's ledger, if they may read it (auditors and admins of the organization).
pub(super) fn reader(user: &AuthUser) -> Result<Uuid, ApiError> {
    user.require_role(&[ClaimRole::Auditor, ClaimRole::Admin])?;
    let ledger = user.org_id;
    user.ledger_reader(ledger)?;
    Ok(ledger)
}

/// `GET /console/events`: the event browser. The listing is itself an audited read of the
/// ledger, as `GET /v1/audit/events` is.
pub async fn events(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    caller: Caller,
    form: web::Query<EventsForm>,
) -> Result<HttpResponse, ApiError> {
    let ledger = reader(&user)?;
    let (mut f, before) = form.filter()?;
    let mut by_mrn = None;
    if let Some(mrn) = non_empty(&form.mrn) {
        if f.patient.is_some() {
            return Err(ApiError::validation("mrn", "give a patient ID or an MRN, not both"));
        }
        let found = super::report::patient_by_mrn(&state, &caller, mrn).await?;
        let Some(ids) = found else {
            return html(&EventsPage {
                page: Page::for_user(&ctx, &user, "Events", "/console/events"),
                form: &form,
                rows: Vec::new(),
                older: None,
                no_such_mrn: true,
                actions: ACTIONS,
                outcomes: OUTCOMES,
            });
        };
        f.patient = Some(ids.patient_id);
        by_mrn = Some(ids.patient_id);
    }
    let mut tx = crate::db::begin(&state.pool, &user.claims()).await?;
    let rows = query::list_events_by_time(&mut tx, ledger, &f, before).await?;
    let mut ev = AuditEvent::new(Action::Read, "audit_log", Outcome::Success).resource(ledger);
    if let Some(p) = f.patient {
        ev = ev.patient(p);
    }
    crate::audit::record(&mut tx, &user.audit_context(), &ev).await?;
    tx.commit().await?;
    let older = (rows.len() as i64 == f.limit)
        .then(|| rows.last().map(|r| form.with_before(&TimeCursor::of(r).encode(), by_mrn)))
        .flatten();
    html(&EventsPage {
        page: Page::for_user(&ctx, &user, "Events", "/console/events"),
        form: &form,
        rows: rows.iter().map(EventRow::from).collect(),
        older,
        no_such_mrn: false,
        actions: ACTIONS,
        outcomes: OUTCOMES,
    })
}

#[derive(Template)]
#[template(path = "console/event.html")]
struct EventPage {
    page: Page,
    row: EventRow,
    /// The event as `GET /v1/audit/events` lists it: what the browser hashes.
    json: String,
    pretty: String,
    origin: String,
    published_keys: Vec<String>,
}

/// `GET /console/events/{seq}`: one event of the caller's ledger, with its fields as the API
/// lists them (the browser recomputes the leaf hash from exactly these).
pub async fn event(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ledger = reader(&user)?;
    let seq: i64 =
        path.parse().ok().filter(|s| *s >= 0).ok_or_else(|| ApiError::validation("seq", "must be a ledger index"))?;
    let mut tx = crate::db::begin(&state.pool, &user.claims()).await?;
    let f = EventFilter { after: Some(seq - 1), limit: 1, ..EventFilter::default() };
    let row = query::list_events(&mut tx, ledger, &f).await?.into_iter().find(|r| r.seq == seq);
    let Some(row) = row else {
        return Err(ApiError::NotFound);
    };
    let mut ev = AuditEvent::new(Action::Read, "audit_log", Outcome::Success).resource(ledger).resource(seq);
    if let Some(p) = row.event.patient_id {
        ev = ev.patient(p);
    }
    crate::audit::record(&mut tx, &user.audit_context(), &ev).await?;
    tx.commit().await?;
    let value = event_json(&row);
    html(&EventPage {
        page: Page::for_user(&ctx, &user, &format!("Event {seq}"), "/console/events"),
        row: EventRow::from(&row),
        json: value.to_string(),
        pretty: serde_json::to_string_pretty(&value).map_err(ApiError::internal)?,
        origin: state.settings.ledger.origin.clone(),
        published_keys: state.ledger_verifier_keys.clone(),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct CheckpointsForm {
    below: Option<u64>,
}

#[derive(Template)]
#[template(path = "console/checkpoints.html")]
struct CheckpointsPage {
    page: Page,
    ledger: Uuid,
    origin: String,
    checkpoints: Vec<StoredCheckpoint>,
    older: Option<i64>,
    published_keys: Vec<String>,
}

/// Checkpoints per page: each successive pair is one consistency proof for the browser.
const CHECKPOINTS_PER_PAGE: i64 = 20;

/// `GET /console/checkpoints`: the ledger's signed checkpoints, newest first; the page's
/// script checks every signature and the consistency of each with the one before.
pub async fn checkpoints(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    form: web::Query<CheckpointsForm>,
) -> Result<HttpResponse, ApiError> {
    let ledger = reader(&user)?;
    let mut tx = crate::db::begin(&state.pool, &user.claims()).await?;
    let list = proofs::checkpoint_history(&mut tx, ledger, form.below, CHECKPOINTS_PER_PAGE).await?;
    let ev = AuditEvent::new(Action::Read, "audit_checkpoint", Outcome::Success).resource(ledger);
    crate::audit::record(&mut tx, &user.audit_context(), &ev).await?;
    tx.commit().await?;
    let older = (list.len() as i64 == CHECKPOINTS_PER_PAGE).then(|| list.last().map(|c| c.tree_size)).flatten();
    html(&CheckpointsPage {
        page: Page::for_user(&ctx, &user, "Checkpoints", "/console/checkpoints"),
        ledger,
        origin: state.settings.ledger.origin.clone(),
        checkpoints: list,
        older,
        published_keys: state.ledger_verifier_keys.clone(),
    })
}

#[derive(Template)]
#[template(path = "console/exports.html")]
struct ExportsPage {
    page: Page,
    ledger: Uuid,
}

/// `GET /console/exports`: download links; each download is `GET /console/ledger/export`, the
/// API's export handler (streamed, audited as an export).
pub async fn exports(ctx: ConsoleCtx, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let ledger = reader(&user)?;
    html(&ExportsPage { page: Page::for_user(&ctx, &user, "Exports", "/console/exports"), ledger })
}
