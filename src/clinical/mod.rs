//! The clinical records service: patients and everything on a chart, the case flow,
//! attachments, care teams and break-glass. Each function runs inside a [`Req`] (one
//! transaction as the caller, one audit event), seals what it writes and opens what it
//! reads. RLS decides visibility; these functions turn "no row" into 404 and check the rules
//! RLS cannot express (refill limits, status transitions).

pub mod allergies;
pub mod attachments;
pub mod care;
pub mod chart;
pub mod conversations;
pub mod error;
pub mod history;
pub mod idempotency;
pub mod medications;
pub mod mrn_lookup;
pub mod page;
pub mod patients;
pub mod pdf;
pub mod prescribers;
pub mod prescriptions;
pub mod request;
pub mod sealed;
pub mod section;

use sqlx::postgres::PgRow;
use uuid::Uuid;

pub use error::ClinicalError;
pub use request::Req;

/// Decodes each of `rows` as the section's row type and opens it (its sealed fields).
pub fn open_rows<R, T>(
    req: &Req<'_>,
    rows: &[PgRow],
    open: impl Fn(&Req<'_>, R) -> Result<T, ClinicalError>,
) -> Result<Vec<T>, ClinicalError>
where
    R: for<'r> sqlx::FromRow<'r, PgRow>,
{
    rows.iter().map(|row| open(req, R::from_row(row)?)).collect()
}

/// What a request needs on a patient's clinical record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Patient (own record) or clinician with access.
    Read,
    /// Clinician with access.
    Write,
}

/// A new chart entry of `patient`: [`require`]s write access and returns the entry's id,
/// noted on the request's audit event.
pub async fn new_entry(req: &mut Req<'_>, patient: Uuid) -> Result<Uuid, ClinicalError> {
    require(req, patient, Access::Write).await?;
    let id = Uuid::now_v7();
    req.resource(id);
    Ok(id)
}

/// 404 unless the caller may read (or write) the clinical record of `patient` — the same
/// predicates the policies use, so the check and RLS cannot disagree. Notes the patient on
/// the request's audit event either way.
pub async fn require(req: &mut Req<'_>, patient: Uuid, access: Access) -> Result<(), ClinicalError> {
    req.patient(patient);
    let sql = match access {
        Access::Read => "SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1) AND custos.can_read_clinical($1)",
        Access::Write => "SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1) AND custos.can_write_clinical($1)",
    };
    let ok: Option<bool> = sqlx::query_scalar(sql).bind(patient).fetch_one(req.conn().await?).await?;
    if ok == Some(true) { Ok(()) } else { Err(ClinicalError::NotFound) }
}
