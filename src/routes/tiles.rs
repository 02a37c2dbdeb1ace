//! C2SP tlog-tiles per ledger (docs/ledger-format.md, "Tiles"), under
//! `/v1/ledgers/{ledger}/`: `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`,
//! and `public` (PUT/DELETE), an admin's opt-in to serving the checkpoint and hash tiles
//! without a token.
//!
//! - Checkpoint and hash tiles: without a token for a published ledger (not recorded: they
//!   are public, like `/v1/audit/keys`); with a token, for the ledger's auditors and admins,
//!   recorded as a read. Full hash tiles of a published ledger are immutable and cached for a
//!   year; everything else is `no-cache` or `no-store`.
//! - Entry bundles (event content): always an auditor's or admin's token, recorded as a read.
//! - Refusals are recorded by the one audit wrapper (src/middleware/outcomes.rs).

use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL};
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::audit::LedgerReader;
use crate::audit::checkpoint::NoteVerifier;
use crate::audit::signing;
use crate::audit::tiles::{self, TileRef};
use crate::audit::{Action, AuditEvent, Outcome};
use crate::auth::AuthUser;
use crate::db::{ClaimRole, Claims};
use crate::error::ApiError;
use crate::routes::openapi::ErrorBody;
use crate::state::AppState;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const PUBLIC_SHORT: &str = "public, no-cache";
const PRIVATE: &str = "private, no-store";

/// Registers the tile routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/ledgers/{ledger}/checkpoint").route(web::get().to(checkpoint)))
        .service(super::resource("/v1/ledgers/{ledger}/keys").route(web::get().to(keys)))
        .service(super::resource("/v1/ledgers/{ledger}/tile/{tail:.+}").route(web::get().to(tile)))
        .service(
            super::resource("/v1/ledgers/{ledger}/public")
                .route(web::put().to(publish))
                .route(web::delete().to(withdraw)),
        );
}

/// The caller, if the request carries a token (which must then be valid).
async fn optional_caller(req: &HttpRequest) -> Result<Option<AuthUser>, ApiError> {
    if !req.headers().contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    let user = AuthUser::extract(req).await?;
    Ok(Some(user))
}

fn text(cache: &str, body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").insert_header((CACHE_CONTROL, cache)).body(body)
}

fn bytes(cache: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/octet-stream").insert_header((CACHE_CONTROL, cache)).body(body)
}

/// `GET /v1/ledgers/{ledger}/keys`: the verifier keys of this ledger's checkpoints, one per
/// line — the installation's keys under the ledger's origin as key name, then the keys under
/// the installation's name, which signed the checkpoints before per-ledger names. Public, like
/// `/v1/audit/keys`: keys and a ledger id the caller already holds.
#[utoipa::path(get, path = "/v1/ledgers/{ledger}/keys", tag = "tiles", operation_id = "ledger_keys", security(()),
    params(("ledger" = Uuid, Path, description = "the ledger: the organization's id")),
    responses((status = 200, content_type = "text/plain", body = String, description = "C2SP note verifier keys, one per line")))]
pub async fn keys(state: web::Data<AppState>, path: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let origin = signing::origin_for(&state.settings.ledger.origin, path.into_inner());
    let mut known = Vec::with_capacity(state.ledger_verifier_keys.len());
    for k in &state.ledger_verifier_keys {
        known.push(NoteVerifier::parse(k).map_err(ApiError::internal)?);
    }
    let mut all = signing::ledger_verifiers(&known, &origin);
    all.rotate_left(known.len());
    let body: String = all.iter().map(|v| v.encode() + "\n").collect();
    Ok(text(PUBLIC_SHORT, body))
}

/// `GET /v1/ledgers/{ledger}/checkpoint`: the latest signed note.
#[utoipa::path(get, path = "/v1/ledgers/{ledger}/checkpoint", tag = "tiles", operation_id = "ledger_checkpoint",
    security((), ("bearer" = [])),
    description = "The latest signed checkpoint (C2SP tlog-checkpoint in a signed note). Without a token for a \
        published ledger; with one, for the ledger's auditors and admins (recorded).",
    params(("ledger" = Uuid, Path, description = "the ledger: the organization's id")),
    responses((status = 200, content_type = "text/plain", body = String, description = "the signed note"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such ledger, not published, or another organization's")))]
pub async fn checkpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let ledger = path.into_inner();
    let caller = optional_caller(&req).await?;
    if let Some(c) = &caller {
        c.ledger_reader(ledger)?;
    }
    let claims = caller.as_ref().map_or_else(|| Claims::anonymous(None), |c| c.claims());
    let mut tx = crate::db::begin(&state.pool, &claims).await?;
    let (size, note) = tiles::checkpoint(&mut tx, ledger).await?.ok_or(ApiError::NotFound)?;
    let cache = if let Some(c) = &caller {
        let ev = AuditEvent::new(Action::Read, "audit_checkpoint", Outcome::Success).resource(ledger).resource(size);
        crate::audit::record(&mut tx, &c.audit_context(), &ev).await?;
        PRIVATE
    } else {
        PUBLIC_SHORT
    };
    tx.commit().await?;
    Ok(text(cache, note))
}

/// `GET /v1/ledgers/{ledger}/tile/…`: a hash tile or an entry bundle.
#[utoipa::path(get, path = "/v1/ledgers/{ledger}/tile/{tail}", tag = "tiles", operation_id = "ledger_tile",
    security((), ("bearer" = [])),
    description = "A C2SP tlog-tiles hash tile (`<L>/<N>[.p/<W>]`, public for a published ledger) or entry bundle \
        (`entries/<N>[.p/<W>]`, an auditor's or admin's token). `<N>` is written in groups of three digits \
        (`x001/234`).",
    params(("ledger" = Uuid, Path, description = "the ledger: the organization's id"),
        ("tail" = String, Path, description = "the tile path after `tile/`, e.g. `0/000` or `entries/x001/234.p/7`")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "the tile's bytes"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn tile(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (ledger, tail) = path.into_inner();
    let t = tiles::parse_tile_path(&tail).ok_or(ApiError::NotFound)?;
    let caller = optional_caller(&req).await?;
    if t.level.is_none() {
        let c = caller.ok_or(ApiError::Unauthorized)?;
        return entries(&state, &c, ledger, t).await;
    }
    if let Some(c) = &caller {
        c.ledger_reader(ledger)?;
    }
    let claims = caller.as_ref().map_or_else(|| Claims::anonymous(None), |c| c.claims());
    let mut tx = crate::db::begin(&state.pool, &claims).await?;
    let body = tiles::hash_tile(&mut tx, ledger, t).await.map_err(ApiError::internal)?.ok_or(ApiError::NotFound)?;
    let public = tiles::is_public(&mut tx, ledger).await?;
    if let Some(c) = &caller {
        let ev = AuditEvent::new(Action::Read, "audit_tile", Outcome::Success).resource(ledger).resource(describe(t));
        crate::audit::record(&mut tx, &c.audit_context(), &ev).await?;
    }
    tx.commit().await?;
    let cache = match (public, t.is_full()) {
        (true, true) => IMMUTABLE,
        (true, false) => PUBLIC_SHORT,
        (false, _) => PRIVATE,
    };
    Ok(bytes(cache, body))
}

fn describe(t: TileRef) -> String {
    let level = t.level.map_or_else(|| "entries".to_owned(), |l| l.to_string());
    format!("tile {level}/{} width {}", t.index, t.width)
}

async fn entries(state: &AppState, caller: &AuthUser, ledger: Uuid, t: TileRef) -> Result<HttpResponse, ApiError> {
    caller.ledger_reader(ledger)?;
    let mut tx = crate::db::begin(&state.pool, &caller.claims()).await?;
    let body = tiles::entry_bundle(&mut tx, ledger, t).await.map_err(ApiError::internal)?.ok_or(ApiError::NotFound)?;
    let ev = AuditEvent::new(Action::Read, "audit_log", Outcome::Success).resource(ledger).resource(describe(t));
    crate::audit::record(&mut tx, &caller.audit_context(), &ev).await?;
    tx.commit().await?;
    Ok(bytes(PRIVATE, body))
}

/// What `PUT`/`DELETE /v1/ledgers/{ledger}/public` answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Publication {
    pub ledger: Uuid,
    /// The checkpoint and hash tiles are served without a token.
    pub public: bool,
    /// Whether this request changed the setting.
    pub changed: bool,
}

/// `PUT /v1/ledgers/{ledger}/public`: publish the checkpoint and hash tiles (admin).
#[utoipa::path(put, path = "/v1/ledgers/{ledger}/public", tag = "tiles", operation_id = "publish_ledger",
    params(("ledger" = Uuid, Path, description = "the ledger: the admin's organization's id")),
    responses((status = 200, body = Publication), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn publish(
    user: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_public(user, &state, path.into_inner(), true).await
}

/// `DELETE /v1/ledgers/{ledger}/public`: withdraw them (admin).
#[utoipa::path(delete, path = "/v1/ledgers/{ledger}/public", tag = "tiles", operation_id = "withdraw_ledger",
    params(("ledger" = Uuid, Path, description = "the ledger: the admin's organization's id")),
    responses((status = 200, body = Publication), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn withdraw(
    user: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_public(user, &state, path.into_inner(), false).await
}

async fn set_public(user: AuthUser, state: &AppState, ledger: Uuid, public: bool) -> Result<HttpResponse, ApiError> {
    let caller = user;
    if caller.claims().role != ClaimRole::Admin {
        return Err(ApiError::Forbidden {
            code: "admin_role_required",
            message: "only an organization's admin publishes its ledger's tiles".into(),
        });
    }
    if caller.claims().org_id != Some(ledger) {
        return Err(ApiError::NotFound);
    }
    let mut tx = crate::db::begin(&state.pool, &caller.claims()).await?;
    let changed = tiles::set_public(&mut tx, ledger, caller.claims().user_id, public).await?;
    let what = if public { "publish tiles" } else { "withdraw tiles" };
    let ev = AuditEvent::new(Action::Admin, "ledger_publication", Outcome::Success).resource(ledger).resource(what);
    crate::audit::record(&mut tx, &caller.audit_context(), &ev).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Publication { ledger, public, changed }))
}
