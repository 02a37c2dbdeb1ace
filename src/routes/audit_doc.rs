//! OpenAPI descriptions of the ledger routes (`routes::audit`, `routes::audit_export`). Those
//! handlers are generic over the user extractor, which `#[utoipa::path]` cannot annotate, so
//! these never-called functions carry the paths; the query types are the handlers' own, and
//! the response schemas below name exactly the fields the handlers write (an API test holds
//! live responses against them).
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::{ConsistencyQuery, EventsQuery, InclusionQuery, LedgerQuery, ReportQuery};
use super::audit_export::ExportQuery;
use super::openapi::ErrorBody;

/// `GET /v1/audit/keys`.
#[derive(utoipa::ToSchema)]
pub struct VerifierKeys {
    /// Checkpoint origin prefix; a ledger's checkpoints name `<origin>/<ledger id>`.
    pub origin: String,
    /// C2SP signed-note verifier keys, `name+hex(key id)+base64(0x01 ‖ Ed25519 public key)`.
    pub keys: Vec<String>,
}

/// RFC 9162 `PATH(index, D[tree_size])`; hashes are base64.
#[derive(utoipa::ToSchema)]
pub struct InclusionProof {
    pub ledger: Uuid,
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub root_hash: String,
    /// Sibling hashes, leaf side first.
    pub proof: Vec<String>,
}

/// RFC 9162 `PROOF(from, D[to])` with both roots; hashes are base64.
#[derive(utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub ledger: Uuid,
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

/// One ledger entry: the event, its position and its hashes (base64). Also one NDJSON line of
/// an export; the CSV export has the same columns.
#[derive(utoipa::ToSchema)]
pub struct LedgerEvent {
    pub ledger_id: Uuid,
    /// 0-based leaf index in the ledger.
    pub seq: u64,
    /// The canonical form the entry was hashed in (`v`: 1 or 2, docs/ledger-format.md).
    pub format_version: u8,
    pub event_id: Uuid,
    /// RFC 3339 UTC with microseconds.
    pub occurred_at: String,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_ids: Vec<String>,
    pub patient_id: Option<Uuid>,
    /// Every patient an access that reached several returned or changed (a list read, an
    /// export); empty otherwise and in format-version-1 entries.
    pub patient_ids: Vec<Uuid>,
    /// success, denied, error.
    pub outcome: String,
    /// Break-glass justification or failure reason; never clinical content.
    pub reason: Option<String>,
    /// The server's id of the request.
    pub request_id: Option<Uuid>,
    /// The client's own id of the request (`X-Request-Id`), for correlation only.
    pub correlation_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub break_glass: bool,
    /// Legacy activity brought in by `custos import`, with its original timestamp.
    pub imported: bool,
    /// `SHA-256(0x00 ‖ canonical event bytes)`.
    pub leaf_hash: String,
    /// `SHA-256(chain_{seq-1} ‖ leaf_hash)`.
    pub chain_hash: String,
}

/// A page of ledger entries.
#[derive(utoipa::ToSchema)]
pub struct EventPage {
    pub items: Vec<LedgerEvent>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// One access to the patient's record.
#[derive(utoipa::ToSchema)]
pub struct AccessReportLine {
    pub ledger_id: Uuid,
    /// Ledger index: prove the line with `/v1/audit/proofs/inclusion`.
    pub seq: u64,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_ids: Vec<String>,
    pub outcome: String,
    pub break_glass: bool,
    /// The written reason, on break-glass lines only.
    pub reason: Option<String>,
    pub leaf_hash: String,
    /// The line's c2sp.org/tlog-proof@v1 file (`/v1/ledgers/{ledger}/events/{index}/proof`).
    pub proof_url: String,
}

/// The HIPAA accounting of disclosures for one patient.
#[derive(utoipa::ToSchema)]
pub struct AccessReport {
    pub patient_id: Uuid,
    pub items: Vec<AccessReportLine>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit/keys", tag = "audit", security(()),
    responses((status = 200, body = VerifierKeys)))]
pub fn keys() {}

#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", params(LedgerQuery),
    description = "The ledger's latest signed checkpoint: a C2SP tlog-checkpoint body \
        (`<origin>/<ledger>\\n<size>\\n<base64 root>\\n`) signed as a C2SP signed note (Ed25519). \
        Auditors and admins of the organization.",
    responses((status = 200, content_type = "text/plain", body = String, description = "the signed note"),
        (status = 403, body = ErrorBody, description = "not an auditor or admin"),
        (status = 404, body = ErrorBody, description = "no such ledger, or another organization's")))]
pub fn checkpoint() {}

#[utoipa::path(get, path = "/v1/audit/proofs/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "index or tree size out of range")))]
pub fn inclusion() {}

#[utoipa::path(get, path = "/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "from > to, or to beyond the ledger")))]
pub fn consistency() {}

#[utoipa::path(get, path = "/v1/audit/events", tag = "audit", params(EventsQuery),
    description = "The ledger's entries in index order, filtered, cursor-paginated. The listing is itself audited.",
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub fn events() {}

#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(ExportQuery),
    description = "Streams the ledger in index order with constant memory: NDJSON (one LedgerEvent per line), \
        CSV (the same columns, RFC 4180) or a FHIR R4 Bundle (type collection) of AuditEvent resources. \
        The export is recorded before the first byte is sent.",
    responses((status = 200, description = "the export, streamed",
            content((LedgerEvent = "application/x-ndjson"), (String = "text/csv"), (serde_json::Value = "application/fhir+json"))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "unknown format, or from > to")))]
pub fn export() {}

#[utoipa::path(get, path = "/v1/patients/{id}/access-report", tag = "audit",
    params(("id" = Uuid, Path), ReportQuery),
    description = "Who accessed the patient's record, when, what, under which role and (break-glass) why, each \
        line with its ledger index. The patient themself, or an admin of their organization; 404 to anyone else.",
    responses((status = 200, body = AccessReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub fn access_report() {}
