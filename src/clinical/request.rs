//! `Req`: one clinical request = one transaction as the caller + exactly one audit event.
//!
//! A handler opens a `Req` (which names the action and resource type), lets a service run
//! queries through `req.conn()` or `req.pipeline(…)`, fill in the event (patient, resource
//! ids) and seal/open fields, then calls [`Req::finish`] with the service's result.
//!
//! The transaction opens with the service's first statements: `BEGIN`, the caller's claims,
//! the session check and the patient scope (the auth layer's `session_check::begin_with`)
//! travel in the same round trip as whatever the service sends first. Nothing runs in it
//! unless the session check admits the caller, and a caller who is not admitted gets the
//! 401/403 every route gives, with no clinical event. Then:
//! - success: the event (outcome `success`, flagged `break_glass` with the grant's reason when
//!   the clinician reaches this patient only through a live grant — looked up by the audit
//!   INSERT itself) is inserted in the same transaction, which then commits; the response is
//!   sent after the commit;
//! - refusal (404/409/422/403): the transaction is rolled back and the event is recorded with
//!   outcome `denied` in a transaction of its own;
//! - failure (integrity, internal): rolled back, recorded with outcome `error`.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::error::ClinicalError;
use super::idempotency::{self, IdempotentWrite};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::auth::AuthError;
use crate::auth::Identity;
use crate::auth::session_check::{self, NotBegun, Presented, Rules};
use crate::crypto::{CryptoError, KeyVersion};
use crate::db::{self, ClaimRole, Claims};
use crate::state::AppState;

/// The caller of a clinical request, as [`Req`] needs it: plain values the HTTP layer's
/// extractor (`crate::middleware::caller::Caller`) builds from the request — the verified
/// token, whose session [`Req`] checks through the auth layer
/// ([`session_check::begin_with`]). No HTTP type crosses into the services.
#[derive(Clone)]
pub struct Caller {
    /// Who the caller's token names and the request it came with.
    pub presented: Presented,
    /// The Idempotency-Key write this request is to store its answer under, if any.
    pub idempotent_write: Option<IdempotentWrite>,
}

/// How the edge answers a failed request: the HTTP layer's error type, made from a
/// [`ClinicalError`] in one place there. [`Req::finish`] records a refusal or failure with the
/// answer's own stable code, so the event and the response never disagree.
pub trait Answer: From<ClinicalError> {
    /// The stable code the client sees (recorded as the event's reason).
    fn code(&self) -> &'static str;
    /// A failure of the server (recorded with outcome `error`), not a refusal (`denied`).
    fn is_failure(&self) -> bool;
}

pub struct Req<'a> {
    pub state: &'a AppState,
    /// The verified token, whose session the first round trip checks.
    caller: Presented,
    claims: Claims,
    idempotent_write: Option<IdempotentWrite>,
    /// Who the caller's token names: confirmed by the session check before any statement of
    /// the request runs.
    pub user: Identity,
    patient_scope: Option<Uuid>,
    tx: Tx,
    ctx: AuditContext,
    pub ev: AuditEvent,
    /// A data key version met while opening that this server had not loaded (0: none).
    unknown_key: AtomicU32,
    /// The success event's INSERT was handed out by [`Req::success_event_query`].
    event_queued: bool,
}

/// Where the request transaction stands.
enum Tx {
    /// Not begun: it begins with the first statements the service sends.
    Pending,
    /// Begun, the session check having admitted the caller.
    Open(Transaction<'static, Postgres>),
    /// Its first round trip failed: the session check refused (`admitted == false`, the
    /// answer is already given) or a statement failed, which rolled everything back.
    Failed { admitted: bool },
}

impl<'a> Req<'a> {
    /// A request as `caller`; with `patient_scope`, narrowed to that patient's records (see
    /// [`db::Claims::patient_scope`]). Nothing is sent yet.
    pub fn new(
        state: &'a AppState,
        caller: Caller,
        action: Action,
        resource_type: &'static str,
        patient_scope: Option<Uuid>,
    ) -> Self {
        let Caller { presented, idempotent_write } = caller;
        Self {
            state,
            claims: presented.claims(),
            user: presented.identity(),
            ctx: presented.audit_context(),
            caller: presented,
            idempotent_write,
            patient_scope,
            tx: Tx::Pending,
            ev: AuditEvent::new(action, resource_type, Outcome::Success),
            unknown_key: AtomicU32::new(0),
            event_queued: false,
        }
    }

    /// Runs `queries` in the request transaction as one pipeline (one round trip; the first
    /// one also carries `BEGIN`, the claims and the session check) and returns each one's
    /// rows. A failure fails the request: later statements are refused.
    pub async fn pipeline(
        &mut self,
        queries: impl IntoIterator<Item = db::BoundQuery>,
    ) -> Result<Vec<Vec<PgRow>>, ClinicalError> {
        match &mut self.tx {
            Tx::Open(tx) => Ok(tx.fetch_pipeline(queries).await?),
            Tx::Pending => {
                let (pool, rules) = (&self.state.pool, self.rules());
                match session_check::begin_with(pool, &self.caller, rules, self.patient_scope, queries).await {
                    Ok((tx, rows)) => {
                        self.tx = Tx::Open(tx);
                        Ok(rows)
                    }
                    Err(NotBegun::Refused(e)) => {
                        self.tx = Tx::Failed { admitted: false };
                        Err(refused(e))
                    }
                    Err(NotBegun::Failed(e)) => {
                        self.tx = Tx::Failed { admitted: true };
                        Err(ClinicalError::Database(e))
                    }
                }
            }
            Tx::Failed { .. } => Err(Self::failed()),
        }
    }

    /// What the session check needs besides the caller, now.
    fn rules(&self) -> Rules {
        Rules { now: self.state.clock.now(), idle_timeout: self.state.settings.auth.idle_timeout }
    }

    fn failed() -> ClinicalError {
        ClinicalError::internal(anyhow::anyhow!("statement after a failed first round trip"))
    }

    /// The request's connection, inside its transaction (begun now if the service has not
    /// sent anything yet).
    pub async fn conn(&mut self) -> Result<&mut PgConnection, ClinicalError> {
        if matches!(self.tx, Tx::Pending) {
            self.pipeline([]).await?;
        }
        match &mut self.tx {
            Tx::Open(tx) => Ok(&mut **tx),
            Tx::Pending | Tx::Failed { .. } => Err(Self::failed()),
        }
    }

    /// Notes the patient the request is about.
    pub fn patient(&mut self, id: Uuid) {
        self.ev.patient_id = Some(id);
    }

    /// Notes a resource id the request touched.
    pub fn resource(&mut self, id: Uuid) {
        self.ev.resource_ids.push(id.to_string());
    }

    /// Notes the records a list read returned, each `(record, patient)`: every patient on the
    /// page finds this read in their access report.
    pub fn listed(&mut self, records: impl IntoIterator<Item = (Uuid, Uuid)>) {
        for (record, patient) in records {
            self.resource(record);
            self.ev.patient_ids.push(patient);
        }
    }

    pub fn is(&self, role: ClaimRole) -> bool {
        self.user.role == role
    }

    /// Seals text for `table.column` of row `id` with the current data key.
    pub fn seal(&self, table: &str, column: &str, id: Uuid, text: &str) -> Result<Vec<u8>, ClinicalError> {
        self.state.crypto.keyring.seal_str(table, column, id, text).map_err(ClinicalError::Crypto)
    }

    pub fn seal_opt(
        &self,
        table: &str,
        column: &str,
        id: Uuid,
        text: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ClinicalError> {
        text.map(|t| self.seal(table, column, id, t)).transpose()
    }

    /// Seals bytes (attachment contents).
    pub fn seal_bytes(&self, table: &str, column: &str, id: Uuid, bytes: &[u8]) -> Result<Vec<u8>, ClinicalError> {
        self.state.crypto.keyring.seal(table, column, id, bytes).map_err(ClinicalError::Crypto)
    }

    /// Opens a sealed text value; any failure is an integrity error naming only the column.
    pub fn open(&self, table: &str, column: &str, id: Uuid, stored: &[u8]) -> Result<String, ClinicalError> {
        match self.state.crypto.keyring.open_string(table, column, id, stored) {
            Ok(text) => Ok(text.as_str().to_owned()),
            Err(e) => Err(self.open_failed(e, table, column)),
        }
    }

    pub fn open_opt(
        &self,
        table: &str,
        column: &str,
        id: Uuid,
        stored: Option<&[u8]>,
    ) -> Result<Option<String>, ClinicalError> {
        stored.map(|s| self.open(table, column, id, s)).transpose()
    }

    /// Opens sealed bytes (attachment contents).
    pub fn open_bytes(&self, table: &str, column: &str, id: Uuid, stored: &[u8]) -> Result<Vec<u8>, ClinicalError> {
        match self.state.crypto.keyring.open(table, column, id, stored) {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(e) => Err(self.open_failed(e, table, column)),
        }
    }

    /// Any failure to open is an integrity error naming only the column; an unknown key
    /// version is also noted, so the request can be retried once the keys are reloaded.
    fn open_failed(&self, e: CryptoError, table: &str, column: &str) -> ClinicalError {
        if let CryptoError::UnknownKeyVersion(v) = e {
            self.unknown_key.store(v, Ordering::Relaxed);
        }
        ClinicalError::Integrity { location: format!("{table}.{column}") }
    }

    /// The data key version this request could not open values with, if any.
    pub fn unknown_key_version(&self) -> Option<KeyVersion> {
        KeyVersion::try_from(self.unknown_key.load(Ordering::Relaxed)).ok()
    }

    /// Rolls back without recording anything: the request is about to be run again.
    pub async fn abandon(self) {
        if let Tx::Open(tx) = self.tx {
            let _ = tx.rollback().await;
        }
    }

    /// Records the event and commits on success; records a denied/error event on failure.
    /// The success event's INSERT as a query, for a service to send in the same pipeline as
    /// its last reads (one round trip fewer). The event must be complete by now: later
    /// changes to `ev` are not written. It commits only with the rest of the transaction; if
    /// the request fails after all, [`Req::finish`] rolls it back with everything else and
    /// records the refusal as usual, so there is still exactly one event.
    pub fn success_event_query(&mut self) -> db::BoundQuery {
        self.event_queued = true;
        audit::writer::insert_query(&self.ctx, &self.ev, self.user.role == ClaimRole::Clinician).1
    }

    pub async fn finish<T: serde::Serialize, E: Answer>(mut self, result: Result<T, ClinicalError>) -> Result<T, E> {
        let err = match result {
            Ok(value) => match self.commit_success(&value).await {
                Ok(()) => return Ok(value),
                // Recording or committing failed: nothing was committed, and that is recorded.
                Err(e) => e,
            },
            Err(e) => e,
        };
        // Rolling back discards whatever the request wrote; the refusal still leaves a trace —
        // once the caller is known to be admitted (a service may fail before its first
        // statement; a refused session is answered by the denial record instead).
        let admitted = match std::mem::replace(&mut self.tx, Tx::Pending) {
            Tx::Open(tx) => {
                let _ = tx.rollback().await;
                true
            }
            Tx::Failed { admitted } => admitted,
            Tx::Pending => match session_check::check_full(&self.state.pool, &self.caller, self.rules()).await {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => return Err(E::from(refused(e))),
                // The session could not be checked: a failure, recorded as one (the token's
                // signature holds, so the actor is known even if the session is not).
                Err(failed) => {
                    let failed = E::from(check_failed(failed));
                    let mut ev = self.ev;
                    ev.outcome = Outcome::Error;
                    ev.reason = Some(format!("session check failed: {}", failed.code()));
                    audit::writer::record_later(&self.state.pool, &self.claims, &self.ctx, &ev);
                    return Err(failed);
                }
            },
        };
        if !admitted {
            return Err(E::from(err));
        }
        let integrity = match &err {
            ClinicalError::Integrity { location } => Some(format!("integrity check failed: {location}")),
            _ => None,
        };
        let unavailable = err.is_unavailable();
        let answer = E::from(err);
        let (outcome, reason) = match integrity {
            Some(reason) => (Outcome::Error, reason),
            None if answer.is_failure() => (Outcome::Error, answer.code().to_owned()),
            None => (Outcome::Denied, answer.code().to_owned()),
        };
        let mut ev = self.ev;
        ev.outcome = outcome;
        ev.reason = Some(reason);
        ev.break_glass = false;
        if unavailable {
            audit::writer::record_later(&self.state.pool, &self.claims, &self.ctx, &ev);
        } else {
            audit::writer::record_alone(&self.state.pool, &self.claims, &self.ctx, &ev).await;
        }
        Err(answer)
    }

    /// The success event (unless the service's pipeline carried it), the answer under the
    /// request's Idempotency-Key (if it came with one), and `COMMIT`.
    async fn commit_success(&mut self, value: &impl serde::Serialize) -> Result<(), ClinicalError> {
        if let Some(write) = self.idempotent_write.clone() {
            let id = Uuid::now_v7();
            let answer = serde_json::to_vec(value).map_err(ClinicalError::internal)?;
            let (table, column) = idempotency::SEALED_AS;
            let sealed = self.state.crypto.keyring.seal(table, column, id, &answer).map_err(ClinicalError::Crypto)?;
            // The answer's status, as the write handlers give it: 200 for a change of
            // something that exists, 201 for what was made.
            let status = if self.ev.action == Action::Update { 200 } else { 201 };
            let (patient, request) = (self.ev.patient_id, self.ctx.request_id);
            let conn = self.conn().await?;
            idempotency::store(conn, &write, id, status, &sealed, patient, request).await.map_err(|e| {
                if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") {
                    ClinicalError::Conflict("another request with this Idempotency-Key is in progress".into())
                } else {
                    e.into()
                }
            })?;
        }
        if !self.event_queued {
            // Begins the transaction (with the session check) if the service sent nothing.
            self.conn().await?;
            let Tx::Open(tx) = &mut self.tx else { return Err(Self::failed()) };
            if self.user.role == ClaimRole::Clinician {
                audit::writer::record_flagging_break_glass(tx, &self.ctx, &self.ev).await?;
            } else {
                audit::record(tx, &self.ctx, &self.ev).await?;
            }
        }
        // else: already inserted in this transaction, by the service's pipeline
        match std::mem::replace(&mut self.tx, Tx::Failed { admitted: true }) {
            Tx::Open(tx) => Ok(tx.commit().await?),
            other => {
                self.tx = other;
                Err(Self::failed())
            }
        }
    }
}

/// The session check's refusal of the caller (401, or the 403 of a restricted session), as the
/// clinical request answers it: the same answer once `crate::error` maps it.
fn refused(e: AuthError) -> ClinicalError {
    match e {
        AuthError::Unauthorized => ClinicalError::Unauthorized,
        AuthError::Forbidden { code, message } => ClinicalError::Forbidden { code, message },
        other => check_failed(other),
    }
}

/// A session check that could not be made (the database is away) or answered what it never
/// answers: a failure, never a refusal.
fn check_failed(e: AuthError) -> ClinicalError {
    match e {
        AuthError::Database(e) => ClinicalError::Database(e),
        AuthError::Internal(e) => ClinicalError::Internal(e),
        other => ClinicalError::internal(anyhow::anyhow!("session check answered {other}")),
    }
}
