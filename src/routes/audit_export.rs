//! `GET /v1/audit/export?format=ndjson|csv|fhir&from=&to=`: streams one ledger in index
//! order with constant memory — pages of rows fetched by keyset (`seq > last`), each in its
//! own short claims transaction, rendered and sent before the next is read.
//!
//! The export is recorded when it ends, with its row count and last index: a completed export
//! in the transaction that read its last page (the last bytes go out only once that event is
//! committed); one that failed, or that the client cut off, in a transaction of its own. The
//! event names every patient the exported events name (`patient_ids`), so each finds the
//! export in their access report. A range or format the ledger cannot hold is refused (422)
//! before the first byte.

use std::collections::BTreeSet;

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::LedgerReader;
use crate::audit::query::{self, EventFilter};
use crate::audit::{Action, AuditContext, AuditEvent, Outcome, formats};
use crate::auth::AuthUser;
use crate::db::Claims;
use crate::error::ApiError;
use crate::state::AppState;

const PAGE: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
    Fhir,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// ndjson (default), csv or fhir.
    format: Option<String>,
    /// The ledger (organization id); default: the caller's organization.
    ledger: Option<Uuid>,
    /// Occurred at or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Occurred before (RFC 3339); not before `from`.
    to: Option<DateTime<Utc>>,
}

enum Phase {
    Header,
    Rows,
    Done,
}

struct Cursor {
    pool: PgPool,
    claims: Claims,
    ctx: AuditContext,
    ledger: Uuid,
    filter: EventFilter,
    format: Format,
    observer: formats::FhirSource,
    phase: Phase,
    first: bool,
    /// Rows sent so far and the index of the last one.
    rows: u64,
    last_index: Option<i64>,
    /// Patients the sent rows name.
    patients: BTreeSet<Uuid>,
    /// The export's event is recorded (success or failure).
    recorded: bool,
}

/// At most this many patients per event (the inbox's limit); an export naming more is
/// recorded as one event per such slice, each with the export's figures.
const PATIENTS_PER_EVENT: usize = 10_000;

impl Cursor {
    /// The export's event(s): one, or one per [`PATIENTS_PER_EVENT`] patients.
    fn events(&self, outcome: Outcome, reason: String) -> Vec<AuditEvent> {
        let patients: Vec<Uuid> = self.patients.iter().copied().collect();
        let slices: Vec<&[Uuid]> =
            if patients.is_empty() { vec![&[]] } else { patients.chunks(PATIENTS_PER_EVENT).collect() };
        slices
            .into_iter()
            .map(|ids| {
                AuditEvent::new(Action::Export, "audit_log", outcome)
                    .resource(self.ledger)
                    .resource(format!("{:?}", self.format).to_lowercase())
                    .patients(ids.iter().copied())
                    .reason(reason.clone())
            })
            .collect()
    }

    fn figures(&self) -> String {
        match self.last_index {
            Some(i) => format!("{} rows, last index {i}", self.rows),
            None => "0 rows".to_owned(),
        }
    }

    /// Records a failed or cut-off export in a transaction of its own (best effort).
    fn record_failure(&mut self, why: &str) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let events = self.events(Outcome::Error, format!("export {why} after {}", self.figures()));
        let (pool, claims, ctx) = (self.pool.clone(), self.claims, self.ctx.clone());
        // Also runs from `Drop` (a client that went away), so on its own task.
        tokio::spawn(async move {
            for ev in &events {
                crate::audit::writer::record_alone(&pool, &claims, &ctx, ev).await;
            }
        });
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        // Dropped before the end: the client disconnected mid-stream.
        self.record_failure("cut off (the client went away)");
    }
}

#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(ExportQuery),
    description = "Streams the ledger in index order with constant memory: NDJSON (one LedgerEvent per line), \
        CSV (the same columns, RFC 4180) or a FHIR R4 Bundle (type collection) of AuditEvent resources. \
        The export is recorded when it ends, with its row count and last index.",
    responses((status = 200, description = "the export, streamed",
            content((crate::audit::store::LogRow = "application/x-ndjson"), (String = "text/csv"), (Object = "application/fhir+json"))),
        (status = 403, body = super::openapi::ErrorBody), (status = 404, body = super::openapi::ErrorBody),
        (status = 422, body = super::openapi::ErrorBody, description = "unknown format, or a bad range")))]
pub async fn export(
    user: AuthUser,
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = user;
    let ledger = match q.ledger {
        Some(l) => l,
        None => caller.org_id,
    };
    caller.ledger_reader(ledger)?;
    let format = match q.format.as_deref().unwrap_or("ndjson") {
        "ndjson" => Format::Ndjson,
        "csv" => Format::Csv,
        "fhir" => Format::Fhir,
        _ => return Err(ApiError::validation("format", "must be ndjson, csv or fhir")),
    };
    super::audit::time_range(q.from, q.to)?;

    let cursor = Cursor {
        pool: state.pool.clone(),
        claims: caller.claims(),
        ctx: caller.audit_context(),
        ledger,
        filter: EventFilter { from: q.from, to: q.to, limit: PAGE, ..EventFilter::default() },
        format,
        observer: formats::FhirSource::new(&state.settings.ledger.origin),
        // NDJSON has no header: start with the rows.
        phase: if format == Format::Ndjson { Phase::Rows } else { Phase::Header },
        first: true,
        rows: 0,
        last_index: None,
        patients: BTreeSet::new(),
        recorded: false,
    };
    let content_type = match format {
        Format::Ndjson => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
        Format::Fhir => "application/fhir+json",
    };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        let chunk = next_chunk(&mut c).await;
        match chunk {
            Ok(Some(bytes)) => Some((Ok::<Bytes, ApiError>(bytes), c)),
            Ok(None) => None,
            Err(e) => {
                // Headers are gone: all we can do is cut the body short, record the failure
                // and say why in the log.
                tracing::error!(error = %e, "audit export aborted");
                c.record_failure(&format!("failed ({})", e.code()));
                c.phase = Phase::Done;
                Some((Err(e), c))
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Disposition", format!("attachment; filename=\"audit-{ledger}.{}\"", ext(format))))
        .streaming(stream))
}

fn ext(f: Format) -> &'static str {
    match f {
        Format::Ndjson => "ndjson",
        Format::Csv => "csv",
        Format::Fhir => "json",
    }
}

async fn next_chunk(c: &mut Cursor) -> Result<Option<Bytes>, ApiError> {
    match c.phase {
        Phase::Done => Ok(None),
        Phase::Header => {
            c.phase = Phase::Rows;
            Ok(Some(Bytes::from_static(match c.format {
                Format::Csv => formats::CSV_HEADER.as_bytes(),
                Format::Fhir | Format::Ndjson => b"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[",
            })))
        }
        Phase::Rows => {
            let mut tx = crate::db::begin(&c.pool, &c.claims).await?;
            let rows = query::list_events(&mut tx, c.ledger, &c.filter).await?;
            c.rows += rows.len() as u64;
            c.last_index = rows.last().map(|r| r.seq).or(c.last_index);
            for row in &rows {
                c.patients.extend(row.event.patient_id);
                c.patients.extend(row.event.patient_ids.iter().copied());
            }
            let last_page = (rows.len() as i64) < PAGE;
            if last_page {
                // The export is complete: recorded with the last page's read, before its bytes.
                for ev in c.events(Outcome::Success, format!("export completed: {}", c.figures())) {
                    crate::audit::record(&mut tx, &c.ctx, &ev).await?;
                }
            }
            tx.commit().await?;
            if last_page {
                c.recorded = true;
            }
            if rows.is_empty() {
                c.phase = Phase::Done;
                return Ok((c.format == Format::Fhir).then(|| Bytes::from_static(b"]}\n")));
            }
            let mut out = String::with_capacity(rows.len() * 600);
            for row in &rows {
                match c.format {
                    Format::Ndjson => {
                        out.push_str(&formats::event_json(row).to_string());
                        out.push('\n');
                    }
                    Format::Csv => out.push_str(&formats::csv_row(row)),
                    Format::Fhir => {
                        if !c.first {
                            out.push(',');
                        }
                        let entry = serde_json::json!({
                            "fullUrl": format!("urn:uuid:{}", row.event.event_id),
                            "resource": formats::fhir_audit_event(row, &c.observer),
                        });
                        out.push_str(&entry.to_string());
                    }
                }
                c.first = false;
            }
            c.filter.after = rows.last().map(|r| r.seq);
            if last_page {
                // Last page: close now rather than spend a query on an empty one.
                if c.format == Format::Fhir {
                    out.push_str("]}\n");
                }
                c.phase = Phase::Done;
            }
            Ok(Some(Bytes::from(out)))
        }
    }
}
