//! A patient by MRN, for the staff who look the ledger up by it: auditors, who may not read
//! the patients table, and admins. `custos.patient_by_mrn` (policies/85_console.sql) answers
//! from the MRN's org-scoped blind index with the patient's id and portal account id, nothing
//! else, and only to auditors and admins of the organization. The caller records the look-up
//! (it is a question about a patient): the console does so through the API's audit wrapper
//! (`console::report::patient_by_mrn`).

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::crypto::{BlindIndexKey, BlindIndexKind};
use crate::domain::Mrn;

/// The ids of the patient an MRN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PatientIds {
    pub patient_id: Uuid,
    /// The patient's portal account, if they registered one (their own sign-ins are in their
    /// access report).
    pub account_id: Option<Uuid>,
}

/// The patient with this MRN in organization `org` (the caller's), if the caller may know.
pub async fn by_mrn(
    conn: &mut PgConnection,
    blind: &BlindIndexKey,
    org: Uuid,
    mrn: &Mrn,
) -> Result<Option<PatientIds>, sqlx::Error> {
    let bidx = blind.blind_index_scoped(BlindIndexKind::Mrn.label(), org, mrn.as_str());
    let found: Option<(Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT patient_id, account_id FROM custos.patient_by_mrn($1)")
            .bind(&bidx[..])
            .fetch_optional(conn)
            .await?;
    Ok(found.map(|(patient_id, account_id)| PatientIds { patient_id, account_id }))
}
