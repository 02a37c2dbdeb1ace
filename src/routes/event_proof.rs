//! `GET /v1/ledgers/{ledger}/events/{index}/proof`: one ledger entry as a
//! `c2sp.org/tlog-proof@v1` file (src/audit/tlog_proof.rs) against the latest checkpoint with
//! its witness cosignatures, for the ledger's auditors and admins; recorded as a read in the
//! request's transaction, refusals by the one audit wrapper. Checked offline with
//! `custos verify --proof FILE --key KEY`.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::audit::LedgerReader;
use crate::audit::{Action, AuditEvent, Outcome, proofs};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/ledgers/{ledger}/events/{index}/proof").route(web::get().to(proof)));
}

/// The path of an entry's proof (the access report links each line to it).
pub fn proof_path(ledger: Uuid, index: i64) -> String {
    format!("/v1/ledgers/{ledger}/events/{index}/proof")
}

#[utoipa::path(get, path = "/v1/ledgers/{ledger}/events/{index}/proof", tag = "audit",
    params(("ledger" = Uuid, Path, description = "the ledger (organization id)"),
        ("index" = u64, Path, description = "0-based ledger index of the event")),
    description = "A c2sp.org/tlog-proof@v1 file: `extra` is the event's canonical bytes (base64), then the \
        index, the RFC 9162 inclusion proof and the latest signed checkpoint with its witness cosignatures. \
        Auditors and admins of the organization.",
    responses((status = 200, content_type = "text/plain", body = String, description = "the .tlog-proof file"),
        (status = 403, body = crate::routes::openapi::ErrorBody, description = "not an auditor or admin"),
        (status = 404, body = crate::routes::openapi::ErrorBody, description = "no such ledger or entry"),
        (status = 422, body = crate::routes::openapi::ErrorBody, description = "entry not covered by a checkpoint yet")))]
pub async fn proof(
    user: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, u64)>,
) -> Result<HttpResponse, ApiError> {
    let (ledger, index) = path.into_inner();
    user.ledger_reader(ledger)?;
    let mut tx = crate::db::begin(&state.pool, &user.claims()).await?;
    let p = proofs::event_proof(&mut tx, ledger, index).await?;
    let ev = AuditEvent::new(Action::Read, "audit_proof", Outcome::Success)
        .resource(ledger)
        .resource(format!("tlog-proof {index}"));
    crate::audit::record(&mut tx, &user.audit_context(), &ev).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((CACHE_CONTROL, "private, no-store"))
        .insert_header((CONTENT_DISPOSITION, format!("attachment; filename=\"{ledger}-{index}.tlog-proof\"")))
        .body(p.encode()))
}
