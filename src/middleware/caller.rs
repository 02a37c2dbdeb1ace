//! Who is calling, as the HTTP layer finds out: the extractors of the caller types of
//! `crate::auth::caller` and the request facts every audit event needs.
//!
//! Use in a handler:
//! ```text
//! async fn handler(user: AuthUser, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
//!     let (mut tx, ctx) = user.begin(&state.pool).await?;   // RLS claims = this user
//!     /* query through &mut *tx */
//!     audit::record(&mut tx, &ctx, &AuditEvent::new(Action::Read, "patient", Outcome::Success)).await?;
//!     tx.commit().await?;
//! }
//! ```
//! Extraction validates the Bearer JWT (EdDSA, our key ids, exp/iss/aud) and then makes ONE
//! database round trip (the claims + a primary-key statement, pipelined) that
//! checks the session is live (not revoked, not idle for longer than the idle timeout, not
//! past its absolute lifetime, user active) and bumps `last_seen_at` when it is more than
//! [`SEEN_GRANULARITY`] old. Any failure is the same 401.
//!
//! Three extractors, by what a *restricted* session may do (a staff member who has not
//! enrolled MFA yet, or anyone who must change a one-time password):
//! - [`AuthUser`]: full sessions only; otherwise 403 `password_change_required` or
//!   `mfa_enrollment_required`. Use it everywhere unless told otherwise.
//! - [`EnrollingUser`]: also staff sessions awaiting MFA enrolment, and staff sessions
//!   restricted by the organization's phishing-resistant policy (the enrol endpoints: TOTP and
//!   passkey registration).
//! - [`AnySessionUser`]: any live session (`/v1/me`, `/v1/me/password`, logout).
//!
//! And [`Caller`], for handlers that open their transaction straight away (the clinical API,
//! through `routes::clinical::audited`): it verifies the token at extraction and leaves the
//! session check to the first round trip of that transaction ([`Caller::begin_with`]), saving the
//! check's own round trip. Same rule as [`AuthUser`] (full sessions only), same answers.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{CorrelationId, RequestId};
use crate::audit::{AuditContext, Recorded};
pub use crate::auth::caller::{Accepted, AnySessionUser, AuthUser, EnrollingUser, Identity, Refusal, RequestMeta};
use crate::clinical::idempotency::IdempotentWrite;
use crate::clinical::request::{Begun, NotBegun, Session, SessionFuture};
use crate::clinical::{self, ClinicalError};
use crate::clock::span;
use crate::db::{self, ClaimRole, Claims};
use crate::error::ApiError;
use crate::state::AppState;

/// The request facts of `req` for its audit events.
pub fn request_meta(req: &HttpRequest) -> RequestMeta {
    let ext = req.extensions();
    RequestMeta {
        request_id: ext.get::<RequestId>().map(|r| r.0),
        correlation_id: ext.get::<CorrelationId>().map(|c| c.0.clone()),
        client_ip: req.peer_addr().map(|a| a.ip()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        recorded: ext.get::<Recorded>().cloned().unwrap_or_default(),
    }
}

impl FromRequest for RequestMeta {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(request_meta(req)))
    }
}

type Fut<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(authenticate(&req).await?.full()?) })
    }
}

impl FromRequest for EnrollingUser {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = authenticate(&req).await?;
            user.password_block().map_err(ApiError::from)?;
            Ok(Self(user))
        })
    }
}

impl FromRequest for AnySessionUser {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(Self(authenticate(&req).await?)) })
    }
}

type LiveRow = (Uuid, String, bool, bool, DateTime<Utc>, DateTime<Utc>, bool);

/// `last_seen_at` is written only when it is older than this: a busy session costs a write
/// (and a WAL flush at commit) every few seconds rather than on every request. The idle
/// timeout is therefore enforced to within this much (a session may end up to this much
/// earlier than a per-request bump would allow, never later).
const SEEN_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// The session check, as the caller: live means not revoked, not past its lifetime, a request
/// since `$4` at the latest, account active. `last_seen_at` is written (to `$3`) only when older
/// than `$5`, and only if no other request holds the row: on the clinical API the write is part
/// of the request's transaction, and a concurrent request of the same session skips it rather
/// than waiting for that transaction to end. No row: not live.
macro_rules! live_session {
    ($select:literal) => {
        concat!(
            "WITH live AS ( \
                SELECT s.id, s.org_id, u.role::text AS role, s.mfa_verified, u.must_change_password, s.expires_at, \
                       s.last_seen_at, \
                       (o.require_phishing_resistant AND NOT s.phishing_resistant AND u.role <> 'patient') \
                           AS passkey_required \
                FROM sessions s JOIN users u ON u.id = s.user_id JOIN organizations o ON o.id = s.org_id \
                WHERE s.id = $1 AND s.user_id = $2 AND u.status = 'active' \
                  AND s.revoked_at IS NULL AND s.expires_at > $3 AND s.last_seen_at > $4), \
            stale AS ( \
                SELECT s.id FROM sessions s JOIN live ON live.id = s.id \
                WHERE live.last_seen_at < $5 FOR UPDATE OF s SKIP LOCKED), \
            seen AS ( \
                UPDATE sessions s SET last_seen_at = greatest(s.last_seen_at, $3) FROM stale \
                WHERE s.id = stale.id \
                RETURNING s.last_seen_at) ",
            $select
        )
    };
}
const LIVE_SESSION: &str = live_session!(
    "SELECT live.org_id, live.role, live.mfa_verified, live.must_change_password, live.expires_at, \
            coalesce((SELECT seen.last_seen_at FROM seen), live.last_seen_at), live.passkey_required \
     FROM live"
);

/// [`LIVE_SESSION`] as a gate for the statements pipelined after it ([`Caller`]): always one
/// row, and unless it admits the caller — live, still the token's organization (`$6`) and
/// role (`$7`), a full session (no one-time password to change; staff with a second factor,
/// as [`AuthUser::mfa_enrollment_required`]) — `custos.refuse_session()` raises SQLSTATE 28000,
/// which aborts the rest of the pipeline before it runs.
const ADMIT_SESSION: &str = live_session!(
    "SELECT l.org_id, l.role, l.mfa_verified, l.must_change_password, l.expires_at, \
            coalesce((SELECT seen.last_seen_at FROM seen), l.last_seen_at), l.passkey_required, \
            CASE WHEN l.org_id = $6 AND l.role = $7 AND NOT l.must_change_password \
                      AND (l.mfa_verified OR l.role = 'patient') AND NOT l.passkey_required \
                 THEN true ELSE custos.refuse_session() END \
     FROM (VALUES (1)) one LEFT JOIN live l ON true"
);

/// The SQLSTATE of `custos.refuse_session()`.
const SESSION_REFUSED: &str = "28000";

/// A presented access token that verified (signature, algorithm, key id, issuer, audience,
/// expiry, a known role): who it says the caller is. Not yet a session that is live.
#[derive(Debug, Clone)]
struct Token {
    user_id: Uuid,
    org_id: Uuid,
    session_id: Uuid,
    role: ClaimRole,
    /// The RLS claims the token asserts (unscoped).
    claims: Claims,
    meta: RequestMeta,
}

fn state_of(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))
}

/// Notes why a presented token was refused, for the denial record (`middleware::outcomes`): 401.
fn refuse(req: &HttpRequest, claims: Claims, reason: &'static str) -> ApiError {
    req.extensions_mut().insert(Refusal { claims, reason });
    ApiError::Unauthorized
}

/// A staff browser session of the console (`/console/`): the session its HttpOnly cookie
/// names, after the HTTP layer checked the cookie's MAC. It stands in for an access token:
/// the extractors then check the session in the database exactly as for a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieSession {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub session_id: Uuid,
    pub role: ClaimRole,
}

/// The token check: no database.
fn verify_token(req: &HttpRequest, state: &AppState) -> Result<Token, ApiError> {
    let meta = request_meta(req);
    let cookie = req.extensions().get::<CookieSession>().copied();
    if let Some(c) = cookie {
        let claims = Claims::user(c.user_id, c.org_id, c.role, meta.request_id);
        return Ok(Token {
            user_id: c.user_id,
            org_id: c.org_id,
            session_id: c.session_id,
            role: c.role,
            claims,
            meta,
        });
    }
    let token = bearer(req).ok_or(ApiError::Unauthorized)?;
    let anonymous = Claims::anonymous(meta.request_id);
    let claims = match state.jwt.validate(token, state.clock.now().timestamp()) {
        Ok(c) => c,
        Err(crate::auth::tokens::TokenError::LifetimeTooLong) => {
            return Err(refuse(req, anonymous, "access token lifetime exceeds the configured maximum"));
        }
        Err(e) => {
            tracing::debug!(reason = %e, "access token rejected");
            return Err(refuse(
                req,
                anonymous,
                "access token rejected (signature, algorithm, issuer, audience or expiry)",
            ));
        }
    };
    let Some(role) = ClaimRole::from_user_role(&claims.role) else {
        return Err(refuse(req, anonymous, "access token with an unknown role"));
    };
    Ok(Token {
        user_id: claims.sub,
        org_id: claims.org,
        session_id: claims.sid,
        role,
        claims: Claims::user(claims.sub, claims.org, role, meta.request_id),
        meta,
    })
}

impl Token {
    /// The session check as a query, to run after this token's claims in the same
    /// transaction (RLS confines it to the caller's own sessions).
    fn session_check(&self, state: &AppState) -> db::BoundQuery {
        self.session_query(state, LIVE_SESSION)
    }

    /// [`Token::session_check`] as a gate ([`ADMIT_SESSION`]).
    fn session_gate(&self, state: &AppState) -> db::BoundQuery {
        self.session_query(state, ADMIT_SESSION).bind(self.org_id).bind(self.role.as_str())
    }

    fn session_query(&self, state: &AppState, sql: &'static str) -> db::BoundQuery {
        let now = state.clock.now();
        sqlx::query(sql)
            .bind(self.session_id)
            .bind(self.user_id)
            .bind(now)
            .bind(now - span(state.settings.auth.idle_timeout))
            .bind(now - SEEN_GRANULARITY)
    }

    /// The caller, if the session check's `rows` say the session is live and the token still
    /// matches the account; otherwise the 401 (with its refusal noted).
    fn admit(self, req: &HttpRequest, state: &AppState, rows: Option<&Vec<PgRow>>) -> Result<AuthUser, ApiError> {
        let row: Option<LiveRow> = rows.and_then(|rows| rows.first()).map(sqlx::FromRow::from_row).transpose()?;
        let Some((org_id, db_role, mfa_verified, must_change_password, expires_at, last_seen, passkey_required)) = row
        else {
            return Err(refuse(
                req,
                self.claims,
                "session not live (revoked, past its lifetime, idle or account disabled)",
            ));
        };
        // A token minted before a role or organization change is not honoured.
        if org_id != self.org_id || db_role != self.role.as_str() {
            return Err(refuse(req, self.claims, "access token does not match the account's role or organization"));
        }
        req.extensions_mut().insert(Accepted(self.claims));
        Ok(AuthUser {
            user_id: self.user_id,
            org_id,
            role: self.role,
            session_id: self.session_id,
            mfa_verified,
            must_change_password,
            passkey_enrollment_required: passkey_required,
            session_expires_at: expires_at,
            idle_expires_at: (last_seen + span(state.settings.auth.idle_timeout)).min(expires_at),
            meta: self.meta,
        })
    }
}

async fn authenticate(req: &HttpRequest) -> Result<AuthUser, ApiError> {
    let state = state_of(req)?;
    let token = verify_token(req, state)?;
    // One round trip: the claims, then the check as the caller, pipelined — one Sync, so one
    // implicit transaction that the claims end with.
    let check = token.session_check(state);
    let results = state.pool.acquire().await?.fetch_pipeline([db::tx::claims_query(&token.claims), check]).await?;
    token.admit(req, state, results.get(1))
}

/// A caller whose access token verified but whose session is checked only in the first round
/// trip of the request's transaction ([`Caller::begin_with`]): for handlers that run all their
/// statements in one transaction (the clinical API, through `clinical::Req`), one round trip
/// fewer than [`AuthUser`] — two fewer when the handler's first statements can be pipelined
/// with it. Same rule as [`AuthUser`] (full sessions only), same 401/403 answers and denial
/// records. The check is the first statement after the claims and is a gate
/// ([`ADMIT_SESSION`]): when it refuses, PostgreSQL skips every statement after it.
pub struct Caller {
    req: HttpRequest,
    token: Token,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            state_of(req).and_then(|state| verify_token(req, state)).map(|token| Self { req: req.clone(), token }),
        )
    }
}

impl Caller {
    /// A value the HTTP layer attached to this request (e.g. an Idempotency-Key to honour).
    pub fn extension<T: Clone + 'static>(&self) -> Option<T> {
        self.req.extensions().get::<T>().cloned()
    }

    pub fn identity(&self) -> Identity {
        Identity { user_id: self.token.user_id, org_id: self.token.org_id, role: self.token.role }
    }

    /// The RLS claims of this caller (unscoped).
    pub fn claims(&self) -> Claims {
        self.token.claims
    }

    /// The audit context of this caller (actor, org, request id, ip, user agent).
    pub fn audit_context(&self) -> AuditContext {
        self.token.meta.context_for(&self.token.claims)
    }

    /// Opens the request transaction as this caller (narrowed to one patient with
    /// `patient_scope`), checks the session, and runs `queries` — all in one round trip:
    /// `BEGIN`, the claims, the scope, the session gate and `queries` go as one pipeline.
    /// Returns the open transaction and the rows of each of `queries`. A session that is not
    /// live, or not a full one, stops the pipeline at the gate; the answer is then
    /// [`AuthUser`]'s (found by checking once more on its own: the gate says only "no").
    pub async fn begin_with(
        &self,
        state: &AppState,
        patient_scope: Option<Uuid>,
        queries: impl IntoIterator<Item = db::BoundQuery>,
    ) -> Result<(Transaction<'static, Postgres>, Vec<Vec<PgRow>>), NotBegun> {
        let claims = match patient_scope {
            Some(patient) => self.token.claims.scoped_to(patient),
            None => self.token.claims,
        };
        match db::tx::begin_checked(&state.pool, &claims, self.token.session_gate(state), queries).await {
            Ok((tx, check, results)) => {
                let check = Some(check);
                // The gate let it through; the same rule is applied once more here.
                match self.token.clone().admit(&self.req, state, check.as_ref()).and_then(|u| Ok(u.full()?)) {
                    Ok(_) => Ok((tx, results)),
                    Err(e) => {
                        let _ = tx.rollback().await;
                        Err(NotBegun::Refused(for_clinical(e)))
                    }
                }
            }
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some(SESSION_REFUSED) => {
                Err(NotBegun::Refused(for_clinical(self.refusal(state).await)))
            }
            // Which statement failed is not known, so neither is whether the gate passed:
            // ask on its own, and answer a refusal as such. A re-check that cannot be made
            // (the database is still away) leaves it a failure: the first error is answered
            // (503 for a lost connection) and recorded as one, never as a refusal.
            Err(e) => Err(match self.check(state).await {
                Ok(Ok(_)) | Err(_) => NotBegun::Failed(ClinicalError::Database(e)),
                Ok(Err(refused)) => NotBegun::Refused(for_clinical(refused)),
            }),
        }
    }

    /// Checks the session on its own (a round trip, no transaction kept): for a request that
    /// ends before it opened its transaction, and for the answer to a refused gate. The outer
    /// error is a check that could not be made (a failure); the inner one a refusal.
    pub async fn check(&self, state: &AppState) -> Result<Result<AuthUser, ApiError>, ApiError> {
        let results = state
            .pool
            .acquire()
            .await?
            .fetch_pipeline([db::tx::claims_query(&self.token.claims), self.token.session_check(state)])
            .await?;
        Ok(self.token.clone().admit(&self.req, state, results.get(1)).and_then(|u| Ok(u.full()?)))
    }

    /// [`Caller::check`], a failure and a refusal alike as the error.
    pub async fn admit(&self, state: &AppState) -> Result<AuthUser, ApiError> {
        self.check(state).await?
    }

    /// Why the gate refused, as [`AuthUser`] answers it.
    async fn refusal(&self, state: &AppState) -> ApiError {
        match self.check(state).await {
            Ok(Err(e)) => e,
            // The gate refused, but why cannot be asked now: still a refusal.
            Err(_) => refuse(&self.req, self.token.claims, "session refused (reason not known: database unavailable)"),
            // Admitted a moment after the gate refused: a race with a change of the session;
            // this request is still refused.
            Ok(Ok(_)) => refuse(&self.req, self.token.claims, "session changed during the request"),
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Caller {
    /// The clinical requests' view of this caller (`clinical::Req`): the token's identity,
    /// claims and audit context and the request's Idempotency-Key write, as plain values, and
    /// this caller as the session gate.
    pub fn clinical(&self) -> clinical::request::Caller<'_> {
        clinical::request::Caller {
            identity: self.identity(),
            claims: self.claims(),
            ctx: self.audit_context(),
            idempotent_write: self.extension::<IdempotentWrite>(),
            session: self,
        }
    }
}

/// The session gate of a clinical request, with refusals noted on this request for the denial
/// record.
impl Session for Caller {
    fn begin_with<'s>(
        &'s self,
        state: &'s AppState,
        patient_scope: Option<Uuid>,
        queries: Vec<db::BoundQuery>,
    ) -> SessionFuture<'s, Result<Begun, NotBegun>> {
        Box::pin(Caller::begin_with(self, state, patient_scope, queries))
    }

    fn check<'s>(&'s self, state: &'s AppState) -> SessionFuture<'s, Result<Result<(), ClinicalError>, ClinicalError>> {
        Box::pin(async move {
            match Caller::check(self, state).await {
                Ok(Ok(_)) => Ok(Ok(())),
                Ok(Err(refused)) => Ok(Err(for_clinical(refused))),
                Err(failed) => Err(for_clinical(failed)),
            }
        })
    }
}

/// An answer of the session check (a 401/403 refusal, or a failure to check) as the clinical
/// request that asked for it carries it: the same answer once `crate::error` maps it back.
fn for_clinical(e: ApiError) -> ClinicalError {
    match e {
        ApiError::Unauthorized => ClinicalError::Unauthorized,
        ApiError::Forbidden { code, message } => ClinicalError::Forbidden { code, message },
        ApiError::Validation { field, rule } => ClinicalError::Validation { field, rule },
        ApiError::NotFound => ClinicalError::NotFound,
        ApiError::Conflict(m) => ClinicalError::Conflict(m),
        ApiError::Unavailable => ClinicalError::Unavailable,
        ApiError::Integrity { location } => ClinicalError::Integrity { location },
        ApiError::Internal(e) => ClinicalError::Internal(e),
        // The session check answers none of these; should one appear, it is a bug.
        other => ClinicalError::internal(anyhow::anyhow!("session check answered {}", other.code())),
    }
}
