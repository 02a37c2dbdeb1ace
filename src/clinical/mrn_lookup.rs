//! A patient by MRN, for the staff who look the ledger up by it: auditors, who may not read
//! the patients table, and admins. `custos.patient_by_mrn` (policies/85_console.sql) answers
//! from the MRN's org-scoped blind index with the patient's id and portal account id, nothing
//! else. Each look-up is one audited read (`patient_lookup`) — it is a question about a
//! patient — naming the patient when there is one.

use serde::Serialize;
use uuid::Uuid;

use super::Req;
use crate::crypto::BlindIndexKind;
use crate::db::ClaimRole;
use crate::domain::Mrn;
use crate::error::ApiError;

/// The ids of the patient an MRN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PatientIds {
    pub patient_id: Uuid,
    /// The patient's portal account, if they registered one (their own sign-ins are in their
    /// access report).
    pub account_id: Option<Uuid>,
}

/// The patient with this MRN in the caller's organization, if any (auditors and admins).
pub async fn by_mrn(req: &mut Req<'_>, mrn: &str) -> Result<Option<PatientIds>, ApiError> {
    if !(req.is(ClaimRole::Auditor) || req.is(ClaimRole::Admin)) {
        return Err(ApiError::Forbidden { code: "forbidden", message: "your role may not do this".into() });
    }
    let mrn = Mrn::parse(mrn)?;
    let bidx = req.state.crypto.blind.blind_index_scoped(BlindIndexKind::Mrn.label(), req.user.org_id, mrn.as_str());
    let found: Option<(Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT patient_id, account_id FROM custos.patient_by_mrn($1)")
            .bind(&bidx[..])
            .fetch_optional(req.conn().await?)
            .await?;
    match found {
        Some((patient_id, account_id)) => {
            req.patient(patient_id);
            req.resource(patient_id);
            req.ev.reason = Some("patient by MRN".into());
            Ok(Some(PatientIds { patient_id, account_id }))
        }
        None => {
            req.ev.reason = Some("patient by MRN: no match".into());
            Ok(None)
        }
    }
}
