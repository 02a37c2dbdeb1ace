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
//! Extraction validates the Bearer JWT (EdDSA, our key ids, exp/iss/aud) — or takes the
//! console's session cookie — and then makes ONE database round trip, the session check of
//! the auth layer (`crate::auth::session_check`): is the session live (not revoked, not idle
//! for longer than the idle timeout, not past its absolute lifetime, user active)? Any
//! refusal is the same 401, noted on the request's [`Verdict`] for the denial record.
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
//! session check to the first round trip of that transaction (`clinical::Req` calls
//! `auth::session_check::begin_with`), saving the check's own round trip. Same rule as
//! [`AuthUser`] (full sessions only), same answers.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use uuid::Uuid;

use super::{CorrelationId, RequestId};
use crate::audit::{AuditContext, Recorded};
pub use crate::auth::caller::{AnySessionUser, AuthUser, EnrollingUser, Identity, Refusal, RequestMeta, Verdict};
use crate::auth::session_check::{self, Presented, Rules};
use crate::clinical;
use crate::clinical::idempotency::IdempotentWrite;
use crate::db::{ClaimRole, Claims};
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
        verdict: ext.get::<Verdict>().cloned().unwrap_or_default(),
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
fn verify_token(req: &HttpRequest, state: &AppState) -> Result<Presented, ApiError> {
    let meta = request_meta(req);
    let cookie = req.extensions().get::<CookieSession>().copied();
    if let Some(c) = cookie {
        return Ok(Presented { user_id: c.user_id, org_id: c.org_id, session_id: c.session_id, role: c.role, meta });
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
    Ok(Presented { user_id: claims.sub, org_id: claims.org, session_id: claims.sid, role, meta })
}

/// What the session check needs besides the caller, now.
fn rules(state: &AppState) -> Rules {
    Rules { now: state.clock.now(), idle_timeout: state.settings.auth.idle_timeout }
}

async fn authenticate(req: &HttpRequest) -> Result<AuthUser, ApiError> {
    let state = state_of(req)?;
    let caller = verify_token(req, state)?;
    Ok(session_check::check(&state.pool, &caller, rules(state)).await?)
}

/// A caller whose access token verified but whose session is checked only in the first round
/// trip of the request's transaction (`auth::session_check::begin_with`, which
/// `clinical::Req` calls): for handlers that run all their statements in one transaction, one
/// round trip fewer than [`AuthUser`] — two fewer when the handler's first statements can be
/// pipelined with it. Same rule as [`AuthUser`] (full sessions only), same 401/403 answers and
/// denial records.
pub struct Caller {
    req: HttpRequest,
    presented: Presented,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            state_of(req)
                .and_then(|state| verify_token(req, state))
                .map(|presented| Self { req: req.clone(), presented }),
        )
    }
}

impl Caller {
    /// A value the HTTP layer attached to this request (e.g. an Idempotency-Key to honour).
    pub fn extension<T: Clone + 'static>(&self) -> Option<T> {
        self.req.extensions().get::<T>().cloned()
    }

    pub fn identity(&self) -> Identity {
        self.presented.identity()
    }

    /// The RLS claims of this caller (unscoped).
    pub fn claims(&self) -> Claims {
        self.presented.claims()
    }

    /// The audit context of this caller (actor, org, request id, ip, user agent).
    pub fn audit_context(&self) -> AuditContext {
        self.presented.audit_context()
    }

    /// Checks the session on its own (a round trip, no transaction kept), full sessions only:
    /// for a handler that does not open a clinical request. A failure and a refusal alike are
    /// the error.
    pub async fn admit(&self, state: &AppState) -> Result<AuthUser, ApiError> {
        Ok(session_check::check_full(&state.pool, &self.presented, rules(state)).await??)
    }

    /// The clinical requests' view of this caller (`clinical::Req`): the verified token and
    /// the request's Idempotency-Key write, as plain values.
    pub fn clinical(&self) -> clinical::request::Caller {
        clinical::request::Caller {
            presented: self.presented.clone(),
            idempotent_write: self.extension::<IdempotentWrite>(),
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
