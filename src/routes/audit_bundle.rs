//! `GET /v1/audit/bundle?ledger=`: the offline verification bundle of the caller's
//! organization's ledger (src/audit/bundle.rs, docs/ledger-format.md) — what `custos export`
//! writes and `custos verify --bundle` checks — as a download, for the console's exports page
//! and any API client.
//!
//! Recorded like the other exports: an `export` of the ledger naming every patient the
//! bundled events name (so each finds it in their access report), in the transaction that
//! read the bundle; the bytes go out only after that commit. The bundle is built in memory
//! (about 600 bytes an event): a ledger of millions of events is better exported with
//! `custos export`, which writes to a file.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::audit::LedgerReader;
use crate::audit::bundle::{self, ExportError};
use crate::audit::checkpoint::NoteVerifier;
use crate::audit::{Action, AuditEvent, Outcome};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// At most this many patients per event (the inbox's limit), as for the streamed exports.
const PATIENTS_PER_EVENT: usize = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BundleQuery {
    /// The ledger (organization id); default: the caller's organization.
    ledger: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/audit/bundle", tag = "audit", params(BundleQuery),
    description = "The ledger's offline verification bundle up to its latest signed checkpoint (the format of \
        `custos export`, checked offline by `custos verify --bundle`): events in canonical JSON, the signed \
        checkpoints and the verifier keys. Auditors and admins of the organization. Recorded as an export.",
    responses((status = 200, content_type = "text/plain", body = String, description = "the bundle (custos-ledger-bundle 1)"),
        (status = 403, body = super::openapi::ErrorBody), (status = 404, body = super::openapi::ErrorBody),
        (status = 409, body = super::openapi::ErrorBody, description = "the ledger has no signed checkpoint yet")))]
pub async fn bundle(
    user: AuthUser,
    state: web::Data<AppState>,
    q: web::Query<BundleQuery>,
) -> Result<HttpResponse, ApiError> {
    let ledger = q.ledger.unwrap_or(user.org_id);
    user.ledger_reader(ledger)?;
    let keys = state
        .ledger_verifier_keys
        .iter()
        .map(|k| NoteVerifier::parse(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let mut tx = crate::db::begin(&state.pool, &user.claims()).await?;
    let mut out = Vec::with_capacity(64 * 1024);
    let summary =
        bundle::export(&mut tx, ledger, &state.settings.ledger.origin, &keys, &mut out).await.map_err(|e| match e {
            ExportError::NothingSigned(_) => {
                ApiError::Conflict("the ledger has no signed checkpoint yet: try again in a few seconds".into())
            }
            other => ApiError::internal(other),
        })?;
    let patients: BTreeSet<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT p FROM audit_log, unnest(array_append(patient_ids, patient_id)) AS p \
         WHERE ledger_id = $1 AND seq < $2 AND p IS NOT NULL",
    )
    .bind(ledger)
    .bind(summary.size as i64)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let patients: Vec<Uuid> = patients.into_iter().collect();
    let slices: Vec<&[Uuid]> =
        if patients.is_empty() { vec![&[]] } else { patients.chunks(PATIENTS_PER_EVENT).collect() };
    let ctx = user.audit_context();
    for ids in slices {
        let ev = AuditEvent::new(Action::Export, "audit_log", Outcome::Success)
            .resource(ledger)
            .resource("bundle".to_owned())
            .patients(ids.iter().copied())
            .reason(format!(
                "offline bundle: {} entries, {} checkpoints, last index {}",
                summary.size,
                summary.checkpoints,
                summary.size - 1
            ));
        crate::audit::record(&mut tx, &ctx, &ev).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"audit-{ledger}.bundle\"")))
        .body(out))
}
