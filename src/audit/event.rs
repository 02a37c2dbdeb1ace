//! What an audit event says. Ids, not names: an event never carries PHI — the patient is a
//! UUID, the resource is a type plus ids, the reason is operator-supplied text (break-glass
//! justification, internal failure reason) that must not contain clinical content.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{ClaimRole, Claims};

/// The `audit_action` enum of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::Type)]
#[sqlx(type_name = "audit_action", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    Login,
    LoginFailed,
    Logout,
    Mfa,
    Refresh,
    Export,
    BreakGlass,
    Admin,
    Import,
    Security,
    KeyManagement,
}

/// The `audit_outcome` enum of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::Type)]
#[sqlx(type_name = "audit_outcome", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Denied,
    Error,
}

/// Who acted, from where: filled once per request and shared by its events.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    pub org_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<&'static str>,
    /// The server's own id of the request: unique, never the client's.
    pub request_id: Option<Uuid>,
    /// The id the client gave the request (`X-Request-Id`), kept for correlating with the
    /// client's logs only: clients choose it, so it says nothing about uniqueness.
    pub correlation_id: Option<String>,
    pub client_ip: Option<IpAddr>,
    /// Truncated to 512 characters when recorded.
    pub user_agent: Option<String>,
    /// Shared with the HTTP layer's audit wrapper: set once a refusal or failure of this
    /// request is recorded, so that the wrapper does not record it a second time.
    pub recorded: Recorded,
}

/// "A refusal or failure event of this request is in the ledger (or on its way there)": one
/// flag per request, shared by every context made for it.
#[derive(Debug, Clone, Default)]
pub struct Recorded(Arc<AtomicBool>);

impl Recorded {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_marked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl AuditContext {
    /// The context matching a set of claims (service contexts record no actor).
    pub fn from_claims(claims: &Claims) -> Self {
        let actor_role = match claims.role {
            ClaimRole::Anonymous => None,
            r => Some(r.as_str()),
        };
        Self {
            org_id: claims.org_id,
            actor_id: claims.user_id,
            actor_role,
            request_id: claims.request_id,
            ..Self::default()
        }
    }
}

/// One audited access.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: Action,
    pub resource_type: &'static str,
    pub resource_ids: Vec<String>,
    pub patient_id: Option<Uuid>,
    /// Every patient whose data the access returned or changed, when it reached several (a
    /// list read, an export): each of them finds it in their access report. Written sorted,
    /// without duplicates.
    pub patient_ids: Vec<Uuid>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub break_glass: bool,
    pub imported: bool,
    /// Defaults to the database clock at insert; set for imported history.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Overrides the context's organization (e.g. a failed login for a known user's org).
    pub org_id: Option<Uuid>,
}

impl AuditEvent {
    pub fn new(action: Action, resource_type: &'static str, outcome: Outcome) -> Self {
        Self {
            action,
            resource_type,
            resource_ids: Vec::new(),
            patient_id: None,
            patient_ids: Vec::new(),
            outcome,
            reason: None,
            break_glass: false,
            imported: false,
            occurred_at: None,
            org_id: None,
        }
    }

    pub fn resource(mut self, id: impl ToString) -> Self {
        self.resource_ids.push(id.to_string());
        self
    }

    pub fn patient(mut self, patient_id: Uuid) -> Self {
        self.patient_id = Some(patient_id);
        self
    }

    /// Names the patients of an access that reached several.
    pub fn patients(mut self, ids: impl IntoIterator<Item = Uuid>) -> Self {
        self.patient_ids.extend(ids);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn break_glass(mut self, on: bool) -> Self {
        self.break_glass = on;
        self
    }

    pub fn in_org(mut self, org_id: Uuid) -> Self {
        self.org_id = Some(org_id);
        self
    }
}
