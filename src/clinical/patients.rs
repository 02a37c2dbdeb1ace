//! Patients: demographics, sealed field by field, with an org-scoped MRN blind index.
//! Who sees which patient is RLS's decision (policies/40_rls_clinical.sql); a clinician who
//! creates a patient joins its care team in the same transaction, or would lose sight of it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::error::ClinicalError;
use super::page::{List, Page};
use super::{Req, open_rows};
use crate::crypto::BlindIndexKind;
use crate::db::{BoundQuery, ClaimRole};
use crate::domain::{BirthDate, ClinicalText, Email, Mrn, PersonName, Phone, Sex};

const T: &str = "patients";

/// `POST /v1/patients`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewPatient {
    pub mrn: String,
    pub given_name: String,
    pub family_name: String,
    /// YYYY-MM-DD, not in the future.
    pub birth_date: String,
    /// female, male, other, unknown (default unknown).
    pub sex: Option<String>,
    pub ssn: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
}

/// Demographics as the API shows them (the SSN is stored sealed but never returned).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Patient {
    pub id: Uuid,
    pub mrn: String,
    pub given_name: String,
    pub family_name: String,
    #[schema(value_type = String, format = Date)]
    pub birth_date: NaiveDate,
    pub sex: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    /// The patient's portal account, once registered.
    pub user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    user_id: Option<Uuid>,
    mrn_enc: Vec<u8>,
    given_name_enc: Vec<u8>,
    family_name_enc: Vec<u8>,
    birth_date_enc: Vec<u8>,
    sex: String,
    phone_enc: Option<Vec<u8>>,
    email_enc: Option<Vec<u8>>,
    address_enc: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
}

const COLS: &str = "id, user_id, mrn_enc, given_name_enc, family_name_enc, birth_date_enc, sex::text AS sex, \
                    phone_enc, email_enc, address_enc, created_at";

fn open(req: &Req<'_>, r: Row) -> Result<Patient, ClinicalError> {
    let birth = req.open(T, "birth_date_enc", r.id, &r.birth_date_enc)?;
    Ok(Patient {
        id: r.id,
        mrn: req.open(T, "mrn_enc", r.id, &r.mrn_enc)?,
        given_name: req.open(T, "given_name_enc", r.id, &r.given_name_enc)?,
        family_name: req.open(T, "family_name_enc", r.id, &r.family_name_enc)?,
        birth_date: NaiveDate::parse_from_str(&birth, "%Y-%m-%d")
            .map_err(|_| ClinicalError::Integrity { location: format!("{T}.birth_date_enc") })?,
        sex: r.sex,
        phone: req.open_opt(T, "phone_enc", r.id, r.phone_enc.as_deref())?,
        email: req.open_opt(T, "email_enc", r.id, r.email_enc.as_deref())?,
        address: req.open_opt(T, "address_enc", r.id, r.address_enc.as_deref())?,
        user_id: r.user_id,
        created_at: r.created_at,
    })
}

fn opt<T>(
    v: Option<&str>,
    parse: impl Fn(&str) -> Result<T, crate::domain::DomainError>,
) -> Result<Option<T>, ClinicalError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Ok(Some(parse(s)?)),
    }
}

/// A [`NewPatient`] body, validated: what [`create`] records.
#[derive(Debug)]
pub struct PatientEntry {
    pub mrn: Mrn,
    pub given: PersonName,
    pub family: PersonName,
    pub birth: BirthDate,
    pub sex: Sex,
    /// Normalized to `123-45-6789`.
    pub ssn: Option<String>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub address: Option<ClinicalText>,
}

impl TryFrom<&NewPatient> for PatientEntry {
    type Error = ClinicalError;

    fn try_from(input: &NewPatient) -> Result<Self, ClinicalError> {
        Ok(Self {
            mrn: Mrn::parse(&input.mrn)?,
            given: PersonName::parse(&input.given_name).map_err(|e| e.with_field("given_name"))?,
            family: PersonName::parse(&input.family_name).map_err(|e| e.with_field("family_name"))?,
            birth: BirthDate::parse(&input.birth_date)?,
            sex: opt(input.sex.as_deref(), Sex::parse)?.unwrap_or(Sex::Unknown),
            ssn: opt(input.ssn.as_deref(), parse_ssn)?,
            phone: opt(input.phone.as_deref(), Phone::parse)?,
            email: opt(input.email.as_deref(), Email::parse)?,
            address: opt(input.address.as_deref(), |s| ClinicalText::parse(s).map_err(|e| e.with_field("address")))?,
        })
    }
}

/// Only admins and clinicians create patients; to anyone else the route does not exist. The
/// route asks before it validates the body, so that the refusal does not depend on it.
pub fn may_create(req: &Req<'_>) -> Result<(), ClinicalError> {
    if matches!(req.user.role, ClaimRole::Admin | ClaimRole::Clinician) { Ok(()) } else { Err(ClinicalError::NotFound) }
}

/// Creates a patient (admins and clinicians).
pub async fn create(req: &mut Req<'_>, entry: PatientEntry) -> Result<Patient, ClinicalError> {
    may_create(req)?;
    let PatientEntry { mrn, given, family, birth, sex, ssn, phone, email, address } = entry;

    let id = Uuid::now_v7();
    let org = req.user.org_id;
    let blind = &req.state.crypto.blind;
    let mrn_bidx = blind.blind_index_scoped(BlindIndexKind::Mrn.label(), org, mrn.as_str());
    let email_bidx = email.as_ref().map(|e| blind.blind_index_scoped(BlindIndexKind::Email.label(), org, e.as_str()));
    let birth_iso = birth.to_iso_string();
    let sealed = (
        req.seal(T, "mrn_enc", id, mrn.as_str())?,
        req.seal(T, "given_name_enc", id, given.as_str())?,
        req.seal(T, "family_name_enc", id, family.as_str())?,
        req.seal(T, "birth_date_enc", id, &birth_iso)?,
        req.seal_opt(T, "ssn_enc", id, ssn.as_deref())?,
        req.seal_opt(T, "phone_enc", id, phone.as_ref().map(|p| p.as_str()))?,
        req.seal_opt(T, "email_enc", id, email.as_ref().map(|e| e.as_str()))?,
        req.seal_opt(T, "address_enc", id, address.as_ref().map(|a| a.as_str()))?,
    );
    req.patient(id);
    req.resource(id);
    let user = req.user.user_id;
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO patients (id, org_id, mrn_enc, mrn_bidx, given_name_enc, family_name_enc, birth_date_enc, sex, \
         ssn_enc, phone_enc, email_enc, email_bidx, address_enc, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::sex, $9, $10, $11, $12, $13, $14) RETURNING {COLS}"
    )))
    .bind(id)
    .bind(org)
    .bind(&sealed.0)
    .bind(&mrn_bidx[..])
    .bind(&sealed.1)
    .bind(&sealed.2)
    .bind(&sealed.3)
    .bind(sex.as_str())
    .bind(&sealed.4)
    .bind(&sealed.5)
    .bind(&sealed.6)
    .bind(email_bidx.as_ref().map(|b| &b[..]))
    .bind(&sealed.7)
    .bind(user)
    .fetch_one(req.conn().await?)
    .await?;
    if req.is(ClaimRole::Clinician) {
        sqlx::query(
            "INSERT INTO care_team_members (org_id, patient_id, clinician_id, added_by) VALUES ($1, $2, $3, $3)",
        )
        .bind(org)
        .bind(id)
        .bind(user)
        .execute(req.conn().await?)
        .await?;
    }
    open(req, row)
}

/// US SSN shape (9 digits, dashes optional), stored as `123-45-6789`.
fn parse_ssn(s: &str) -> Result<String, crate::domain::DomainError> {
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    if digits.len() == 9 && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(format!("{}-{}-{}", &digits[..3], &digits[3..5], &digits[5..]))
    } else {
        Err(crate::domain::DomainError::new(
            "ssn",
            crate::domain::Rule::Format { expected: "9 digits like 123-45-6789" },
        ))
    }
}

/// One patient's demographics, or 404 (absent or not visible).
pub async fn get(req: &mut Req<'_>, id: Uuid) -> Result<Patient, ClinicalError> {
    let query = get_query(req, id);
    let rows = query.fetch_all(req.conn().await?).await?;
    get_row(req, &rows)
}

/// The query behind [`get`]; notes the patient on the request's audit event.
pub(super) fn get_query(req: &mut Req<'_>, id: Uuid) -> BoundQuery {
    req.patient(id);
    req.resource(id);
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM patients WHERE id = $1"))).bind(id)
}

/// [`get_query`]'s row, opened; 404 when there is none.
pub(super) fn get_row(req: &Req<'_>, rows: &[PgRow]) -> Result<Patient, ClinicalError> {
    open_rows(req, rows, open)?.into_iter().next().ok_or(ClinicalError::NotFound)
}

/// Patients visible to the caller, optionally by MRN (blind index).
pub async fn list(req: &mut Req<'_>, page: &Page, mrn: Option<&str>) -> Result<List<Patient>, ClinicalError> {
    let bidx = match mrn {
        None => None,
        Some(m) => {
            let m = Mrn::parse(m)?;
            Some(req.state.crypto.blind.blind_index_scoped(BlindIndexKind::Mrn.label(), req.user.org_id, m.as_str()))
        }
    };
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM patients WHERE ($1::bytea IS NULL OR mrn_bidx = $1) \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4"
    )))
    .bind(bidx.as_ref().map(|b| &b[..]))
    .bind(page.after_ts)
    .bind(page.after_id)
    .bind(page.fetch())
    .fetch_all(req.conn().await?)
    .await?;
    let items = rows.into_iter().map(|r| open(req, r)).collect::<Result<Vec<_>, _>>()?;
    let list = page.finish(items, |p| (p.created_at, p.id));
    req.listed(list.items.iter().map(|p| (p.id, p.id)));
    Ok(list)
}
