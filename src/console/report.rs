//! The patient access report, printable: an auditor (or admin) enters a patient's MRN and gets
//! the HIPAA accounting of disclosures the API builds (`routes::audit::report_lines`: list
//! reads, exports, PDFs, break-glass with its reason, the patient's own sign-ins), one table
//! with a print stylesheet. The MRN is looked up through `clinical::mrn_lookup` (one audited
//! `patient_lookup`); the report is recorded as the API records it (`access_report`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::auditor::{reader, url_pairs};
use super::{ConsoleCtx, Page, html_status};
use crate::audit::{Action, AuditEvent, Outcome};
use crate::auth::AuthUser;
use crate::clinical::ClinicalError;
use crate::clinical::mrn_lookup::{self, PatientIds};
use crate::db::ClaimRole;
use crate::domain::Mrn;
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::routes::audit::{AccessReportLine, report_lines};
use crate::routes::clinical::audited;
use crate::routes::resource;
use crate::state::AppState;

/// The patient with this MRN in the caller's organization (auditors and admins): one audited
/// read (`patient_lookup`, through the API's audit wrapper), naming the patient when found —
/// for this page and the event browser's MRN filter.
pub(super) async fn patient_by_mrn(
    state: &AppState,
    caller: &Caller,
    mrn: &str,
) -> Result<Option<PatientIds>, ApiError> {
    audited(state, caller, Action::Read, "patient_lookup", async |r| {
        if !(r.is(ClaimRole::Auditor) || r.is(ClaimRole::Admin)) {
            return Err(ClinicalError::Forbidden { code: "forbidden", message: "your role may not do this".into() });
        }
        let mrn = Mrn::parse(mrn)?;
        let (org, state) = (r.user.org_id, r.state);
        let found = mrn_lookup::by_mrn(r.conn().await?, &state.crypto.blind, org, &mrn).await?;
        match found {
            Some(ids) => {
                r.patient(ids.patient_id);
                r.resource(ids.patient_id);
                r.ev.reason = Some("patient by MRN".into());
            }
            None => r.ev.reason = Some("patient by MRN: no match".into()),
        }
        Ok(found)
    })
    .await
}

/// Lines per page of the report (a printed page of the report holds about 25).
pub const REPORT_LINES: i64 = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/access-report").route(web::get().to(access_report)));
}

#[derive(Debug, Default, Deserialize)]
pub struct ReportForm {
    mrn: Option<String>,
    /// Continue after this ledger index (the "later entries" link).
    after: Option<i64>,
}

/// One line of the report as the table shows it.
pub struct Line {
    pub seq: i64,
    pub occurred_at: String,
    pub actor: String,
    pub actor_role: String,
    pub action: String,
    pub resource: String,
    pub outcome: String,
    pub break_glass: bool,
    pub reason: String,
}

impl From<AccessReportLine> for Line {
    fn from(l: AccessReportLine) -> Self {
        Self {
            seq: l.seq,
            occurred_at: l.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor: l.actor_id.map(|a| a.to_string()).unwrap_or_else(|| "system".into()),
            actor_role: l.actor_role.unwrap_or_default(),
            action: l.action,
            resource: l.resource_type,
            outcome: l.outcome,
            break_glass: l.break_glass,
            reason: l.reason.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/access_report.html")]
struct ReportPage {
    page: Page,
    mrn: String,
    /// An MRN was looked up (and `patient` is what it found).
    searched: bool,
    patient: Option<PatientIds>,
    ledger: Uuid,
    lines: Vec<Line>,
    after: Option<i64>,
    /// The link to the next page, when this one is full.
    later: Option<String>,
    generated_at: String,
    generated_by: String,
    error: Option<String>,
}

/// `GET /console/access-report?mrn=`: the form, and the report of the patient with that MRN.
pub async fn access_report(
    state: web::Data<AppState>,
    ctx: ConsoleCtx,
    user: AuthUser,
    caller: Caller,
    form: web::Query<ReportForm>,
) -> Result<HttpResponse, ApiError> {
    let ledger = reader(&user)?;
    let mrn = form.mrn.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let mut view = ReportPage {
        page: Page::for_user(&ctx, &user, "Patient access report", "/console/access-report"),
        mrn: mrn.clone(),
        searched: false,
        patient: None,
        ledger,
        lines: Vec::new(),
        after: form.after.filter(|a| *a >= 0),
        later: None,
        generated_at: state.clock.now().format("%Y-%m-%d %H:%M UTC").to_string(),
        generated_by: format!("{} ({})", user.user_id, user.role.as_str()),
        error: None,
    };
    if mrn.is_empty() {
        return html_status(StatusCode::OK, &view);
    }
    let found = match patient_by_mrn(&state, &caller, &mrn).await {
        Ok(f) => f,
        Err(e @ ApiError::Validation { .. }) => {
            let status = actix_web::ResponseError::status_code(&e);
            view.error = Some(e.to_string());
            return html_status(status, &view);
        }
        Err(e) => return Err(e),
    };
    view.searched = true;
    view.patient = found;
    // As the look-up read it (trimmed, upper case).
    view.mrn = mrn.to_ascii_uppercase();
    let Some(ids) = found else {
        return html_status(StatusCode::OK, &view);
    };
    let mut tx = crate::db::begin(&state.pool, &user.claims()).await?;
    let lines = report_lines(&mut tx, &state, ledger, ids.patient_id, ids.account_id, view.after, REPORT_LINES).await?;
    let ev = AuditEvent::new(Action::Read, "access_report", Outcome::Success)
        .patient(ids.patient_id)
        .resource(ids.patient_id);
    crate::audit::record(&mut tx, &user.audit_context(), &ev).await?;
    tx.commit().await?;
    view.later = (lines.len() as i64 == REPORT_LINES)
        .then(|| {
            lines.last().map(|l| format!("/console/access-report?{}&after={}", url_pairs(&[("mrn", &form.mrn)]), l.seq))
        })
        .flatten();
    view.lines = lines.into_iter().map(Line::from).collect();
    html_status(StatusCode::OK, &view)
}
