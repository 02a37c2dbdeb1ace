//! The ledger over HTTP: verifier keys, checkpoints, proofs, event listings, exports and the
//! patient access report. Auditors and admins see their own organization's ledger (the ledger
//! id is the organization id); patients see their own access report. RLS enforces the same.
//!
//! Handlers take the one authenticated-caller extractor, `AuthUser` ([`LedgerReader`] adds
//! the ledger's access rule to it).

use actix_web::{HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::proofs::{self, ProofError};
use crate::audit::query::{self, EventFilter};
use crate::audit::{Action, AuditEvent, Outcome, formats};
use crate::auth::AuthUser;
use crate::db::ClaimRole;
use crate::error::ApiError;
use crate::routes::openapi::ErrorBody;
use crate::state::AppState;

/// What the ledger routes ask of the signed-in caller.
pub(crate) trait LedgerReader {
    /// The caller's organization (its ledger).
    fn org(&self) -> Result<Uuid, ApiError>;
    /// Auditors and admins read their organization's ledger; nobody else does.
    fn ledger_reader(&self, ledger: Uuid) -> Result<(), ApiError>;
}

impl LedgerReader for AuthUser {
    fn org(&self) -> Result<Uuid, ApiError> {
        Ok(self.org_id)
    }

    fn ledger_reader(&self, ledger: Uuid) -> Result<(), ApiError> {
        match self.role {
            ClaimRole::Auditor | ClaimRole::Admin if self.org_id == ledger => Ok(()),
            ClaimRole::Auditor | ClaimRole::Admin => Err(ApiError::NotFound),
            _ => Err(ApiError::Forbidden {
                code: "audit_role_required",
                message: "only auditors and admins read the audit ledger".into(),
            }),
        }
    }
}

/// `GET /v1/audit/keys`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifierKeys {
    /// Checkpoint origin prefix; a ledger's checkpoints name `<origin>/<ledger id>`.
    pub origin: String,
    /// C2SP signed-note verifier keys, `name+hex(key id)+base64(0x01 ‖ Ed25519 public key)`.
    pub keys: Vec<String>,
}

/// RFC 9162 `PATH(index, D[tree_size])`; hashes are base64.
#[derive(Serialize, utoipa::ToSchema)]
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
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub ledger: Uuid,
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

/// A page of ledger entries.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventPage {
    #[schema(value_type = Vec<crate::audit::store::LogRow>)]
    pub items: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// One access to the patient's record.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessReportLine {
    pub ledger_id: Uuid,
    /// Ledger index: prove the line with `/v1/audit/proofs/inclusion`.
    pub seq: i64,
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
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessReport {
    pub patient_id: Uuid,
    pub items: Vec<AccessReportLine>,
    pub next_cursor: Option<String>,
}

/// Registers the authenticated ledger routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/audit/checkpoint", web::get().to(checkpoint))
        .route("/v1/audit/proofs/inclusion", web::get().to(inclusion))
        .route("/v1/audit/proofs/consistency", web::get().to(consistency))
        .route("/v1/audit/events", web::get().to(events))
        .route("/v1/audit/export", web::get().to(super::audit_export::export))
        .route("/v1/audit/bundle", web::get().to(super::audit_bundle::bundle))
        .route("/v1/patients/{id}/access-report", web::get().to(access_report));
}

impl From<ProofError> for ApiError {
    fn from(e: ProofError) -> Self {
        match e {
            ProofError::UnknownLedger => ApiError::NotFound,
            ProofError::OutOfRange(m) => ApiError::validation("tree_size", m),
            ProofError::Store(e) => ApiError::internal(e),
        }
    }
}

/// `GET /v1/audit/keys`: the checkpoint verifier keys (public; no authentication).
#[utoipa::path(get, path = "/v1/audit/keys", tag = "audit", security(()), responses((status = 200, body = VerifierKeys)))]
pub async fn keys(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(VerifierKeys { origin: state.settings.ledger.origin.clone(), keys: state.ledger_verifier_keys.clone() }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// The ledger: the organization's id.
    ledger: Uuid,
}

/// `GET /v1/audit/checkpoint?ledger=`: the latest signed note, as text/plain.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", params(LedgerQuery),
    description = "The ledger's latest signed checkpoint: a C2SP tlog-checkpoint body \
        (`<origin>/<ledger>\\n<size>\\n<base64 root>\\n`) signed as a C2SP signed note (Ed25519). \
        Auditors and admins of the organization.",
    responses((status = 200, content_type = "text/plain", body = String, description = "the signed note"),
        (status = 403, body = ErrorBody, description = "not an auditor or admin"),
        (status = 404, body = ErrorBody, description = "no such ledger, or another organization's")))]
pub async fn checkpoint(
    user: AuthUser,
    state: web::Data<AppState>,
    q: web::Query<LedgerQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = user;
    caller.ledger_reader(q.ledger)?;
    let mut tx = crate::db::begin(&state.pool, &caller.claims()).await?;
    let (size, note) = proofs::latest_checkpoint(&mut tx, q.ledger).await?;
    let ev = AuditEvent::new(Action::Read, "audit_checkpoint", Outcome::Success).resource(q.ledger).resource(size);
    crate::audit::record(&mut tx, &caller.audit_context(), &ev).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(note))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The ledger: the organization's id.
    ledger: Uuid,
    /// 0-based leaf index (the event's `seq`); below `tree_size`.
    index: u64,
    /// Size of the tree to prove against (e.g. a checkpoint's); at most the ledger's size.
    tree_size: u64,
}

#[utoipa::path(get, path = "/v1/audit/proofs/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "index or tree size out of range")))]
pub async fn inclusion(
    user: AuthUser,
    state: web::Data<AppState>,
    q: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = user;
    caller.ledger_reader(q.ledger)?;
    let mut tx = crate::db::begin(&state.pool, &caller.claims()).await?;
    let p = proofs::inclusion(&mut tx, q.ledger, q.index, q.tree_size).await?;
    let ev = AuditEvent::new(Action::Read, "audit_proof", Outcome::Success)
        .resource(q.ledger)
        .resource(format!("inclusion {} in {}", q.index, q.tree_size));
    crate::audit::record(&mut tx, &caller.audit_context(), &ev).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(InclusionProof {
        ledger: q.ledger,
        index: q.index,
        tree_size: q.tree_size,
        leaf_hash: B64.encode(p.leaf_hash),
        root_hash: B64.encode(p.root),
        proof: p.proof.iter().map(|h| B64.encode(h)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The ledger: the organization's id.
    ledger: Uuid,
    /// The older tree size (≤ `to`).
    from: u64,
    /// The newer tree size (≤ the ledger's size).
    to: u64,
}

#[utoipa::path(get, path = "/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "from > to, or to beyond the ledger")))]
pub async fn consistency(
    user: AuthUser,
    state: web::Data<AppState>,
    q: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = user;
    caller.ledger_reader(q.ledger)?;
    let mut tx = crate::db::begin(&state.pool, &caller.claims()).await?;
    let (proof, old, new) = proofs::consistency(&mut tx, q.ledger, q.from, q.to).await?;
    let ev = AuditEvent::new(Action::Read, "audit_proof", Outcome::Success)
        .resource(q.ledger)
        .resource(format!("consistency {} to {}", q.from, q.to));
    crate::audit::record(&mut tx, &caller.audit_context(), &ev).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ConsistencyProof {
        ledger: q.ledger,
        from: q.from,
        to: q.to,
        from_root: B64.encode(old),
        to_root: B64.encode(new),
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The ledger (organization id); default: the caller's organization.
    ledger: Option<Uuid>,
    /// Events about this patient.
    patient: Option<Uuid>,
    /// Events by this user.
    actor: Option<Uuid>,
    /// read, create, update, delete, login, login_failed, logout, mfa, refresh, export,
    /// break_glass, admin, import, security, key_management.
    #[param(value_type = Option<String>)]
    action: Option<Action>,
    /// success, denied, error.
    #[param(value_type = Option<String>)]
    outcome: Option<Outcome>,
    /// Occurred at or after (RFC 3339).
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Occurred before (RFC 3339); not before `from`.
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only (or no) break-glass accesses.
    break_glass: Option<bool>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

fn parse_cursor(c: Option<&str>) -> Result<Option<i64>, ApiError> {
    c.map(|c| c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| ApiError::validation("cursor", "invalid cursor")))
        .transpose()
}

/// `from` ≤ `to` when both are given (an inverted range is a client mistake, not an empty page).
pub(crate) fn time_range(
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), ApiError> {
    // The ledger's instants are years 0001–9999 (docs/ledger-format.md); PostgreSQL refuses
    // some values outside them only once the query runs, which for an export is after the
    // answer has begun.
    use chrono::Datelike as _;
    for (field, t) in [("from", from), ("to", to)] {
        if t.is_some_and(|t| !(1..=9999).contains(&t.year())) {
            return Err(ApiError::validation(field, "must be between years 0001 and 9999"));
        }
    }
    match (from, to) {
        (Some(f), Some(t)) if f > t => Err(ApiError::validation("from", "must not be after `to`")),
        _ => Ok(()),
    }
}

fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=query::MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::validation("limit", format!("must be 1 to {}", query::MAX_PAGE))),
    }
}

/// `GET /v1/audit/events`: filtered, cursor-paginated; the listing is itself audited.
#[utoipa::path(get, path = "/v1/audit/events", tag = "audit", params(EventsQuery),
    description = "The ledger's entries in index order, filtered, cursor-paginated. The listing is itself audited.",
    responses((status = 200, body = EventPage), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn events(
    user: AuthUser,
    state: web::Data<AppState>,
    q: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = user;
    let ledger = q.ledger.map_or_else(|| caller.org(), Ok)?;
    caller.ledger_reader(ledger)?;
    time_range(q.from, q.to)?;
    let f = EventFilter {
        patient: q.patient,
        actor: q.actor,
        action: q.action,
        outcome: q.outcome,
        from: q.from,
        to: q.to,
        break_glass: q.break_glass,
        after: parse_cursor(q.cursor.as_deref())?,
        limit: page_limit(q.limit)?,
    };
    let mut tx = crate::db::begin(&state.pool, &caller.claims()).await?;
    let rows = query::list_events(&mut tx, ledger, &f).await?;
    let ev = AuditEvent::new(Action::Read, "audit_log", Outcome::Success).resource(ledger);
    crate::audit::record(&mut tx, &caller.audit_context(), &ev).await?;
    tx.commit().await?;
    let next = (rows.len() as i64 == f.limit).then(|| rows.last().map(|r| r.seq.to_string())).flatten();
    let items: Vec<_> = rows.iter().map(formats::event_json).collect();
    Ok(HttpResponse::Ok().json(EventPage { items, next_cursor: next }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// `GET /v1/patients/{id}/access-report`: who accessed the record, when, what, as which role
/// and (break-glass) why, each line with its ledger index. The patient themself, or an admin
/// or auditor of their organization.
#[utoipa::path(get, path = "/v1/patients/{id}/access-report", tag = "audit",
    params(("id" = Uuid, Path), ReportQuery),
    description = "Who accessed the patient's record, when, what, under which role and (break-glass) why, each \
        line with its ledger index. The patient themself, or an admin or auditor of their organization (HIPAA \
        auditors are the report's main readers; auditors read it from the ledger, never the patient's record); \
        404 to anyone else, recorded.",
    responses((status = 200, body = AccessReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn access_report(
    user: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = user;
    let patient = path.into_inner();
    let org = caller.org()?;
    // Only the patient themself and their organization's admins and auditors; to anyone else
    // the report does not exist (as for a patient outside one's reach: 404, never a hint that
    // it exists).
    let role = caller.claims().role;
    if !matches!(role, ClaimRole::Patient | ClaimRole::Admin | ClaimRole::Auditor) {
        return Err(ApiError::NotFound);
    }
    let (after, limit) = (parse_cursor(q.cursor.as_deref())?, page_limit(q.limit)?);
    let mut tx = crate::db::begin(&state.pool, &caller.claims()).await?;
    // Patients and admins see the patient row under RLS; auditors read no patient row, only
    // whether the patient is of their organization (ids, `custos.patient_of_org`). The lines
    // themselves come from the ledger, which auditors read.
    let visible = match role {
        ClaimRole::Auditor => query::patient_of_org(&mut tx, patient).await?,
        _ => query::patient_visible(&mut tx, patient).await?,
    };
    let Some(account) = visible else {
        return Err(ApiError::NotFound);
    };
    let items = report_lines(&mut tx, &state, org, patient, account, after, limit).await?;
    let ev = AuditEvent::new(Action::Read, "access_report", Outcome::Success).patient(patient).resource(patient);
    crate::audit::record(&mut tx, &caller.audit_context(), &ev).await?;
    tx.commit().await?;
    let next = (items.len() as i64 == limit).then(|| items.last().map(|r| r.seq.to_string())).flatten();
    Ok(HttpResponse::Ok().json(AccessReport { patient_id: patient, items, next_cursor: next }))
}

/// One page of a patient's access report (after ledger index `after`, at most `limit` lines),
/// break-glass reasons opened: the API's report and the console's printable one. The caller
/// has established that it may see the patient and records the read in `tx`.
pub(crate) async fn report_lines(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    org: Uuid,
    patient: Uuid,
    account: Option<Uuid>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<AccessReportLine>, ApiError> {
    let rows = query::access_report(&mut *tx, org, patient, account, after, limit).await?;
    // Break-glass reasons are sealed (the ledger carries a commitment): the report shows the
    // text, to the patient too — it is the purpose of a disclosure of their own record.
    let grant_of = |e: &crate::audit::store::EventFields| {
        e.break_glass.then(|| crate::clinical::care::grant_named_by(e.reason.as_deref())).flatten()
    };
    let grants: Vec<Uuid> = rows.iter().filter_map(|r| grant_of(&r.event)).collect();
    let reasons = crate::clinical::care::reasons_of(&mut *tx, &state.crypto.keyring, &grants).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let e = &r.event;
            AccessReportLine {
                ledger_id: r.ledger_id,
                seq: r.seq,
                occurred_at: e.occurred_at,
                actor_id: e.actor_id,
                actor_role: e.actor_role.clone(),
                action: e.action.clone(),
                resource_type: e.resource_type.clone(),
                resource_ids: e.resource_ids.clone(),
                outcome: e.outcome.clone(),
                break_glass: e.break_glass,
                reason: if e.break_glass {
                    grant_of(e).and_then(|id| reasons.get(&id).cloned()).or_else(|| e.reason.clone())
                } else {
                    None
                },
                leaf_hash: B64.encode(&r.leaf_hash),
                proof_url: super::event_proof::proof_path(r.ledger_id, r.seq),
            }
        })
        .collect())
}
