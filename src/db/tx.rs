//! The request transaction: every request that touches data runs inside one, as the
//! unprivileged `custos_app` role with the caller's claims set transaction-locally.
//!
//! `set_config(..., true)` is `SET LOCAL`: the role and claims vanish at COMMIT/ROLLBACK, so a
//! pooled connection (or PgBouncer in transaction mode) never leaks one request's identity to
//! the next. Role and all claims are set in a single statement, as PostgREST does.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The role claim. The first four are user roles; `Auth`, `System` and `Outbox` are service
/// contexts that policies/ understands (pre-authentication look-ups; maintenance commands;
/// the outbox sender, policies/37_invites_outbox.sql).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRole {
    Patient,
    Clinician,
    Admin,
    Auditor,
    Auth,
    System,
    /// The outbox sender of `custos serve`: takes and settles outbox messages, nothing else.
    Outbox,
    /// No role claim at all: policies show nothing.
    Anonymous,
}

impl ClaimRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Clinician => "clinician",
            Self::Admin => "admin",
            Self::Auditor => "auditor",
            Self::Auth => "auth",
            Self::System => "system",
            Self::Outbox => "outbox",
            Self::Anonymous => "",
        }
    }

    /// Parses a user role as stored in `users.role`.
    pub fn from_user_role(s: &str) -> Option<Self> {
        match s {
            "patient" => Some(Self::Patient),
            "clinician" => Some(Self::Clinician),
            "admin" => Some(Self::Admin),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }
}

/// Who is asking: what the RLS policies read through `custos.user_id()` & co.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub user_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub role: ClaimRole,
    pub request_id: Option<Uuid>,
    /// The one patient a request is about (`custos.patient_scope()`), when it is about one.
    /// It only ever narrows: clinical rows of other patients become invisible, and access to
    /// this patient is still decided by the same predicate — but once per statement instead
    /// of once per row (policies/40_rls_clinical.sql).
    pub patient_scope: Option<Uuid>,
}

impl Claims {
    pub fn anonymous(request_id: Option<Uuid>) -> Self {
        Self { user_id: None, org_id: None, role: ClaimRole::Anonymous, request_id, patient_scope: None }
    }

    pub fn user(user_id: Uuid, org_id: Uuid, role: ClaimRole, request_id: Option<Uuid>) -> Self {
        Self { user_id: Some(user_id), org_id: Some(org_id), role, request_id, patient_scope: None }
    }

    /// A maintenance command acting on one organization.
    pub fn system(org_id: Option<Uuid>) -> Self {
        Self { user_id: None, org_id, role: ClaimRole::System, request_id: None, patient_scope: None }
    }

    /// Pre-authentication work before any account is known: sees no rows; may only call the
    /// look-up functions and write to the system ledger.
    pub fn auth(request_id: Option<Uuid>) -> Self {
        Self { user_id: None, org_id: None, role: ClaimRole::Auth, request_id, patient_scope: None }
    }

    /// A sign-in flow pinned to the one account a look-up function resolved: sees and
    /// changes that account's identity rows only.
    pub fn auth_for(user_id: Uuid, org_id: Uuid, request_id: Option<Uuid>) -> Self {
        Self { user_id: Some(user_id), org_id: Some(org_id), role: ClaimRole::Auth, request_id, patient_scope: None }
    }

    /// A sign-in flow that knows the organization but no account yet (a patient invite):
    /// sees no identity rows; records events in that organization's ledger.
    pub fn auth_in_org(org_id: Uuid, request_id: Option<Uuid>) -> Self {
        Self { user_id: None, org_id: Some(org_id), role: ClaimRole::Auth, request_id, patient_scope: None }
    }

    /// The outbox sender (`crate::auth::outbox_sender`): all organizations' due messages
    /// (`org_id` None) or one organization's, whose ledger then records the delivery.
    pub fn outbox(org_id: Option<Uuid>) -> Self {
        Self { user_id: None, org_id, role: ClaimRole::Outbox, request_id: None, patient_scope: None }
    }

    /// The same claims, narrowed to one patient's records.
    pub fn scoped_to(self, patient: Uuid) -> Self {
        Self { patient_scope: Some(patient), ..self }
    }
}

/// Begins a transaction running as `custos_app` with `claims`.
pub async fn begin(pool: &PgPool, claims: &Claims) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    Ok(begin_with(pool, claims, []).await?.0)
}

/// The access question of a patient-scoped transaction, asked once as it begins
/// (policies/10_access_functions.sql).
const ENTER_PATIENT_SCOPE: &str = "SELECT custos.enter_patient_scope()";

/// Begins a transaction as `claims` and runs `queries` in it, all in one round trip:
/// `BEGIN`, the claims, for a patient-scoped transaction the access question
/// (`custos.enter_patient_scope()`), then `queries`, as one pipeline of prepared,
/// parameterized statements (`PgConnection::begin_pipeline`, vendor/README.md). Returns the
/// open transaction and the rows of each of `queries`. If any statement fails, nothing stays
/// open.
pub async fn begin_with(
    pool: &PgPool,
    claims: &Claims,
    queries: impl IntoIterator<Item = super::BoundQuery>,
) -> Result<(Transaction<'static, Postgres>, Vec<Vec<PgRow>>), sqlx::Error> {
    let (tx, _, rows) = begin_pipeline(pool, claims, None, queries).await?;
    Ok((tx, rows))
}

/// [`begin_with`] with `check` right after the claims, ahead of everything else (the patient
/// scope included): a statement that raises unless the transaction may go on, such as the
/// session check (src/middleware/caller.rs). Also returns `check`'s rows.
pub async fn begin_checked(
    pool: &PgPool,
    claims: &Claims,
    check: super::BoundQuery,
    queries: impl IntoIterator<Item = super::BoundQuery>,
) -> Result<(Transaction<'static, Postgres>, Vec<PgRow>, Vec<Vec<PgRow>>), sqlx::Error> {
    let (tx, check, rows) = begin_pipeline(pool, claims, Some(check), queries).await?;
    Ok((tx, check.unwrap_or_default(), rows))
}

async fn begin_pipeline(
    pool: &PgPool,
    claims: &Claims,
    check: Option<super::BoundQuery>,
    queries: impl IntoIterator<Item = super::BoundQuery>,
) -> Result<(Transaction<'static, Postgres>, Option<Vec<PgRow>>, Vec<Vec<PgRow>>), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let checked = check.is_some();
    let scoped = claims.patient_scope.is_some();
    let mut pipeline = vec![claims_query(claims)];
    pipeline.extend(check);
    if scoped {
        pipeline.push(sqlx::query(ENTER_PATIENT_SCOPE));
    }
    pipeline.extend(queries);
    // One result per statement, in order: claims, [check], [scope], queries.
    let mut results = conn.begin_pipeline(pipeline).await?.into_iter().skip(1);
    let check = if checked { results.next() } else { None };
    let rows = results.skip(usize::from(scoped)).collect();
    Ok((Transaction::adopt(conn)?, check, rows))
}

/// The role and claims as one parameterized statement, for [`set_claims`] or as the first
/// query of a pipeline (`PgConnection::fetch_pipeline`), whose queries share one transaction
/// — implicit if none is open — so the claims hold for the rest of it and end with it.
pub fn claims_query(claims: &Claims) -> super::BoundQuery {
    let opt = |u: Option<Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    sqlx::query(
        "SELECT set_config('role', 'custos_app', true), set_config('custos.user_id', $1, true), \
         set_config('custos.org_id', $2, true), set_config('custos.role', $3, true), \
         set_config('custos.request_id', $4, true), set_config('custos.patient_id', $5, true)",
    )
    .bind(opt(claims.user_id))
    .bind(opt(claims.org_id))
    .bind(claims.role.as_str())
    .bind(opt(claims.request_id))
    .bind(opt(claims.patient_scope))
}

/// Sets (or replaces, within the same transaction) the role and claims.
pub async fn set_claims(conn: &mut sqlx::PgConnection, claims: &Claims) -> Result<(), sqlx::Error> {
    claims_query(claims).execute(&mut *conn).await?;
    if claims.patient_scope.is_some() {
        sqlx::query(ENTER_PATIENT_SCOPE).execute(&mut *conn).await?;
    }
    Ok(())
}
