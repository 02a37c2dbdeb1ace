//! `GET /v1/audit/export?format=ndjson|csv|fhir&from=&to=`: streams one ledger in index
//! order with constant memory — pages of rows fetched by keyset (`seq > last`), each in its
//! own short claims transaction, rendered and sent before the next is read. The export is
//! recorded (and committed) before the first byte goes out.

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::Caller;
use crate::audit::query::{self, EventFilter};
use crate::audit::{Action, AuditEvent, Outcome, formats};
use crate::db::Claims;
use crate::error::ApiError;
use crate::startup::AppState;

const PAGE: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
    Fhir,
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
    ledger: Option<Uuid>,
    from: Option<DateTime<Utc>>,
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
    ledger: Uuid,
    filter: EventFilter,
    format: Format,
    observer: String,
    phase: Phase,
    first: bool,
}

pub async fn export<U: Into<Caller>>(
    user: U,
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller: Caller = user.into();
    let ledger = match q.ledger {
        Some(l) => l,
        None => caller.claims.org_id.ok_or(ApiError::Unauthorized)?,
    };
    let format = match q.format.as_deref().unwrap_or("ndjson") {
        "ndjson" => Format::Ndjson,
        "csv" => Format::Csv,
        "fhir" => Format::Fhir,
        _ => return Err(ApiError::validation("format", "must be ndjson, csv or fhir")),
    };
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f > t
    {
        return Err(ApiError::validation("from", "must not be after `to`"));
    }
    caller.ledger_reader(ledger)?;
    let mut tx = crate::db::begin(&state.pool, &caller.claims).await?;
    let ev = AuditEvent::new(Action::Export, "audit_log", Outcome::Success)
        .resource(ledger)
        .resource(format!("{format:?}").to_lowercase());
    crate::audit::record(&mut tx, &caller.ctx, &ev).await?;
    tx.commit().await?;

    let cursor = Cursor {
        pool: state.pool.clone(),
        claims: caller.claims,
        ledger,
        filter: EventFilter { from: q.from, to: q.to, limit: PAGE, ..EventFilter::default() },
        format,
        observer: format!("Custos {}", state.settings.ledger.origin),
        phase: Phase::Header,
        first: true,
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
                // Headers are gone: all we can do is cut the body short and say why in the log.
                tracing::error!(error = %e, "audit export aborted");
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
                Format::Fhir => b"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[",
                Format::Ndjson => b"",
            })))
        }
        Phase::Rows => {
            let mut tx = crate::db::begin(&c.pool, &c.claims).await?;
            let rows = query::list_events(&mut tx, c.ledger, &c.filter).await?;
            tx.commit().await?;
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
            if (rows.len() as i64) < PAGE {
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
