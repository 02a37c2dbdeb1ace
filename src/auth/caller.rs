//! Who is calling, as plain values: the request facts every audit event needs
//! ([`RequestMeta`]), the signed-in caller ([`AuthUser`] and its restricted forms) and who a
//! token names ([`Identity`]). No HTTP here: the extractors that build these from a request
//! are the HTTP layer's (`crate::middleware::caller`); the services take them as they are.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::AuthError;
use crate::audit::{AuditContext, Recorded};
use crate::db::{self, ClaimRole, Claims};

/// Request id, client address and user agent: what an audit event records about "from where".
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The server's id of this request (never the client's).
    pub request_id: Option<Uuid>,
    /// The client's own id of the request (`X-Request-Id`), for correlation only.
    pub correlation_id: Option<String>,
    /// The TCP peer (behind a proxy: the proxy).
    pub client_ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The request's "refusal or failure recorded" flag (see `crate::audit::Recorded`).
    pub recorded: Recorded,
    /// The session check's verdict on this request's caller.
    pub verdict: Verdict,
}

impl RequestMeta {
    /// An audit context with no actor yet (pre-authentication), in the `auth` service role.
    pub fn audit_context(&self) -> AuditContext {
        AuditContext {
            actor_role: Some(ClaimRole::Auth.as_str()),
            ..self.context_for(&Claims::anonymous(self.request_id))
        }
    }

    /// The audit context of a request made with `claims` from where this one came.
    pub fn context_for(&self, claims: &Claims) -> AuditContext {
        AuditContext {
            request_id: self.request_id,
            correlation_id: self.correlation_id.clone(),
            client_ip: self.client_ip,
            user_agent: self.user_agent.clone(),
            recorded: self.recorded.clone(),
            ..AuditContext::from_claims(claims)
        }
    }
}

/// The extractor refused a presented access token: who the token claimed to be (when its
/// signature held) and why. Read by the HTTP layer's audit wrapper (`middleware::outcomes`).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub claims: Claims,
    pub reason: &'static str,
}

/// The session check's verdict on a request's caller, for the HTTP layer's audit wrapper
/// (`middleware::outcomes`): who was admitted (whom a later refusal or failure names), or whose
/// session was refused and why. One cell per request, shared by every [`RequestMeta`] made for
/// it (like [`Recorded`]); the latest note of each kind holds.
#[derive(Debug, Clone, Default)]
pub struct Verdict(Arc<Mutex<Notes>>);

#[derive(Debug, Default)]
struct Notes {
    refused: Option<Refusal>,
    accepted: Option<Claims>,
}

impl Verdict {
    fn notes(&self) -> MutexGuard<'_, Notes> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session check refused the caller.
    pub fn refuse(&self, refusal: Refusal) {
        self.notes().refused = Some(refusal);
    }

    /// The session check admitted the caller `claims` name.
    pub fn accept(&self, claims: Claims) {
        self.notes().accepted = Some(claims);
    }

    pub fn refused(&self) -> Option<Refusal> {
        self.notes().refused.clone()
    }

    pub fn accepted(&self) -> Option<Claims> {
        self.notes().accepted
    }
}

/// A signed-in caller whose session was live at the start of this request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: ClaimRole,
    pub session_id: Uuid,
    /// The session passed a second factor (login with TOTP/recovery code, or MFA confirmed in it).
    pub mfa_verified: bool,
    pub must_change_password: bool,
    /// The organization requires a phishing-resistant factor and this staff session was not
    /// opened with one: it may only enrol a passkey ([`EnrollingUser`]) and sign out.
    pub passkey_enrollment_required: bool,
    /// Absolute end of the session.
    pub session_expires_at: DateTime<Utc>,
    /// When the session dies if no further request comes.
    pub idle_expires_at: DateTime<Utc>,
    pub meta: RequestMeta,
}

impl AuthUser {
    /// The RLS claims of this caller.
    pub fn claims(&self) -> Claims {
        Claims::user(self.user_id, self.org_id, self.role, self.meta.request_id)
    }

    /// The audit context of this caller (actor, org, request id, ip, user agent).
    pub fn audit_context(&self) -> AuditContext {
        self.meta.context_for(&self.claims())
    }

    /// Opens the request transaction as this caller, with the matching audit context.
    pub async fn begin(&self, pool: &PgPool) -> Result<(Transaction<'static, Postgres>, AuditContext), AuthError> {
        Ok((db::begin(pool, &self.claims()).await?, self.audit_context()))
    }

    /// 403 `forbidden` unless the caller has one of `roles`.
    pub fn require_role(&self, roles: &[ClaimRole]) -> Result<(), AuthError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(AuthError::Forbidden { code: "forbidden", message: "your role may not do this".into() })
        }
    }

    /// Staff must use MFA (patients may): a staff session without a second factor.
    pub fn mfa_enrollment_required(&self) -> bool {
        self.role != ClaimRole::Patient && !self.mfa_verified
    }

    /// A full session only: 403 when a one-time password is to be changed or a staff member
    /// has no second factor yet.
    pub fn full(self) -> Result<Self, AuthError> {
        self.password_block()?;
        self.mfa_block()?;
        self.passkey_block()?;
        Ok(self)
    }

    pub fn passkey_block(&self) -> Result<(), AuthError> {
        if self.passkey_enrollment_required {
            return Err(AuthError::Forbidden {
                code: "passkey_enrollment_required",
                message: "your organization requires a passkey: register one (POST /v1/me/passkeys/register/start) \
                          and sign in with it"
                    .into(),
            });
        }
        Ok(())
    }

    pub fn password_block(&self) -> Result<(), AuthError> {
        if self.must_change_password {
            return Err(AuthError::Forbidden {
                code: "password_change_required",
                message: "change your one-time password first (POST /v1/me/password)".into(),
            });
        }
        Ok(())
    }

    pub fn mfa_block(&self) -> Result<(), AuthError> {
        if self.mfa_enrollment_required() {
            return Err(AuthError::Forbidden {
                code: "mfa_enrollment_required",
                message: "enrol a second factor first (POST /v1/me/mfa/enroll)".into(),
            });
        }
        Ok(())
    }
}

/// Any live session, restricted or not.
#[derive(Debug, Clone)]
pub struct AnySessionUser(pub AuthUser);

/// A live session that is not waiting for a password change (may be awaiting MFA enrolment).
#[derive(Debug, Clone)]
pub struct EnrollingUser(pub AuthUser);

/// Who a verified token names (`super::session_check::Presented`). Until the session check admitted them, use it only to
/// decide what to ask the database; the check confirms organization and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: ClaimRole,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict is one cell per request: a note made through any `RequestMeta` of the
    /// request (the clinical request's copy) is what the audit wrapper reads through another
    /// (its own), and a later note of a kind replaces an earlier one.
    #[test]
    fn verdict_is_shared_by_every_copy_of_the_request_meta() {
        let meta = RequestMeta::default();
        let copy = meta.clone();
        assert!(meta.verdict.refused().is_none() && meta.verdict.accepted().is_none());
        let (user, org) = (Uuid::now_v7(), Uuid::now_v7());
        let claims = Claims::user(user, org, ClaimRole::Clinician, None);
        copy.verdict.accept(claims);
        assert_eq!(meta.verdict.accepted().map(|c| c.user_id), Some(Some(user)));
        copy.verdict.refuse(Refusal { claims, reason: "first" });
        copy.verdict.refuse(Refusal { claims, reason: "second" });
        assert_eq!(meta.verdict.refused().map(|r| r.reason), Some("second"));
        // Another request's meta sees none of it.
        assert!(RequestMeta::default().verdict.refused().is_none());
    }
}
