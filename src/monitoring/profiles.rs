//! The facts the detectors need, kept by an organization's admins and sealed like PHI:
//! staff profiles (family name, address — each sealed, with a keyed blind index of its
//! normalized form — and the patient record that is the employee), patient flags
//! (confidential, date of death — sealed) and the organization's working hours. Every change
//! is recorded in the ledger in the transaction that makes it; values never are (only which
//! facts were set).

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::MonitorError;
use super::hours::WorkingHours;
use super::normalize;
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::crypto::store::FieldCrypto;

/// A sealed value and its blind index (both absent when the fact is cleared).
type Sealed = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Longest family name or address accepted (characters).
pub const MAX_TEXT: usize = 500;

/// Who is changing the facts: an admin of `org`.
#[derive(Debug, Clone, Copy)]
pub struct Admin {
    pub org_id: Uuid,
    pub user_id: Uuid,
}

/// `PUT /v1/admin/users/{id}/profile`: the whole profile (absent fields are cleared).
#[derive(Debug, Clone, Default)]
pub struct StaffProfile {
    pub family_name: Option<String>,
    pub address: Option<String>,
    pub patient_id: Option<Uuid>,
}

/// What the API answers: which facts are on file (never their values).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffProfileSet {
    pub user_id: Uuid,
    pub family_name_set: bool,
    pub address_set: bool,
    pub patient_id: Option<Uuid>,
}

fn text(
    field: &str,
    v: Option<&str>,
    norm: fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>, MonitorError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(MonitorError::invalid(field, format!("at most {MAX_TEXT} characters, no control characters")));
    }
    let n = norm(v).ok_or_else(|| MonitorError::invalid(field, "must contain letters or digits"))?;
    Ok(Some((v.to_owned(), n)))
}

pub async fn put_staff_profile(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    crypto: &FieldCrypto,
    admin: Admin,
    user: Uuid,
    input: &StaffProfile,
) -> Result<StaffProfileSet, MonitorError> {
    let family = text("family_name", input.family_name.as_deref(), normalize::family_name)?;
    let address = text("address", input.address.as_deref(), normalize::address)?;
    let role: Option<String> = sqlx::query_scalar("SELECT role::text FROM users WHERE id = $1 AND org_id = $2")
        .bind(user)
        .bind(admin.org_id)
        .fetch_optional(&mut *conn)
        .await?;
    match role.as_deref() {
        None => return Err(MonitorError::NotFound),
        Some("patient") => return Err(MonitorError::invalid("id", "staff profiles are for staff accounts")),
        Some(_) => {}
    }
    if let Some(p) = input.patient_id {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1 AND org_id = $2)")
            .bind(p)
            .bind(admin.org_id)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            return Err(MonitorError::invalid("patient_id", "no such patient in your organization"));
        }
        let taken: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM staff_profiles WHERE patient_id = $1 AND user_id <> $2)")
                .bind(p)
                .bind(user)
                .fetch_one(&mut *conn)
                .await?;
        if taken {
            return Err(MonitorError::invalid("patient_id", "already the record of another staff member"));
        }
    }
    let seal = |column: &str, v: &Option<(String, String)>, kind: &str| -> Result<Sealed, MonitorError> {
        Ok(match v {
            Some((raw, norm)) => (
                Some(crypto.keyring.seal_str("staff_profiles", column, user, raw)?),
                Some(crypto.blind.blind_index_scoped(kind, admin.org_id, norm).to_vec()),
            ),
            None => (None, None),
        })
    };
    let (fam_enc, fam_bidx) = seal("family_name_enc", &family, normalize::FAMILY_NAME_KIND)?;
    let (addr_enc, addr_bidx) = seal("address_enc", &address, normalize::ADDRESS_KIND)?;
    sqlx::query(
        "INSERT INTO staff_profiles (user_id, org_id, family_name_enc, family_name_bidx, address_enc, address_bidx, \
             patient_id, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (user_id) DO UPDATE SET family_name_enc = EXCLUDED.family_name_enc, \
             family_name_bidx = EXCLUDED.family_name_bidx, address_enc = EXCLUDED.address_enc, \
             address_bidx = EXCLUDED.address_bidx, patient_id = EXCLUDED.patient_id, updated_by = EXCLUDED.updated_by",
    )
    .bind(user)
    .bind(admin.org_id)
    .bind(fam_enc)
    .bind(fam_bidx)
    .bind(addr_enc)
    .bind(addr_bidx)
    .bind(input.patient_id)
    .bind(admin.user_id)
    .execute(&mut *conn)
    .await?;
    let set = |b: bool| if b { "set" } else { "cleared" };
    let ev = AuditEvent::new(Action::Admin, "staff_profile", Outcome::Success).resource(user).reason(format!(
        "staff profile: family name {}, address {}, patient link {}",
        set(family.is_some()),
        set(address.is_some()),
        set(input.patient_id.is_some())
    ));
    audit::record(conn, ctx, &ev).await?;
    Ok(StaffProfileSet {
        user_id: user,
        family_name_set: family.is_some(),
        address_set: address.is_some(),
        patient_id: input.patient_id,
    })
}

/// `PUT /v1/patients/{id}/flags`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatientFlagsSet {
    pub patient_id: Uuid,
    pub confidential: bool,
    pub deceased_on: Option<NaiveDate>,
}

/// The flags as the edge parsed them.
#[derive(Debug, Clone, Copy)]
pub struct PatientFlags {
    pub confidential: bool,
    pub deceased_on: Option<NaiveDate>,
}

/// `today` is the organization's clock's date: a date of death may not be after it.
pub async fn put_patient_flags(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    crypto: &FieldCrypto,
    admin: Admin,
    patient: Uuid,
    flags: PatientFlags,
    today: NaiveDate,
) -> Result<PatientFlagsSet, MonitorError> {
    let PatientFlags { confidential, deceased_on } = flags;
    if deceased_on.is_some_and(|d| d > today) {
        return Err(MonitorError::invalid("deceased_on", "must not be in the future"));
    }
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1 AND org_id = $2)")
        .bind(patient)
        .bind(admin.org_id)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Err(MonitorError::NotFound);
    }
    let died = deceased_on
        .map(|d| {
            crypto.keyring.seal_str("patient_flags", "deceased_on_enc", patient, &d.format("%Y-%m-%d").to_string())
        })
        .transpose()?;
    sqlx::query(
        "INSERT INTO patient_flags (patient_id, org_id, confidential, deceased_on_enc, updated_by) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (patient_id) DO UPDATE SET confidential = EXCLUDED.confidential, \
             deceased_on_enc = EXCLUDED.deceased_on_enc, updated_by = EXCLUDED.updated_by",
    )
    .bind(patient)
    .bind(admin.org_id)
    .bind(confidential)
    .bind(died)
    .bind(admin.user_id)
    .execute(&mut *conn)
    .await?;
    let ev = AuditEvent::new(Action::Admin, "patient_flags", Outcome::Success)
        .resource(patient)
        .patient(patient)
        .reason(format!(
            "patient flags: confidential {}, date of death {}",
            confidential,
            if deceased_on.is_some() { "recorded" } else { "none" }
        ));
    audit::record(conn, ctx, &ev).await?;
    Ok(PatientFlagsSet { patient_id: patient, confidential, deceased_on })
}

/// `PUT /v1/admin/organization/working-hours`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkingHoursSet {
    pub time_zone: String,
    pub days: serde_json::Value,
}

pub async fn put_working_hours(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    admin: Admin,
    time_zone: &str,
    hours: &WorkingHours,
) -> Result<WorkingHoursSet, MonitorError> {
    let tz = time_zone.trim();
    let known: bool = tz.len() <= 64
        && sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .bind(tz)
            .fetch_one(&mut *conn)
            .await?;
    if !known {
        return Err(MonitorError::invalid("time_zone", "must be an IANA time zone such as Europe/Paris"));
    }
    let days = hours.to_json();
    sqlx::query(
        "INSERT INTO org_working_hours (org_id, time_zone, days, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id) DO UPDATE SET time_zone = EXCLUDED.time_zone, days = EXCLUDED.days, \
             updated_by = EXCLUDED.updated_by",
    )
    .bind(admin.org_id)
    .bind(tz)
    .bind(&days)
    .bind(admin.user_id)
    .execute(&mut *conn)
    .await?;
    let ev = AuditEvent::new(Action::Admin, "organization", Outcome::Success)
        .resource(admin.org_id)
        .reason(format!("working hours set ({tz})"));
    audit::record(conn, ctx, &ev).await?;
    Ok(WorkingHoursSet { time_zone: tz.to_owned(), days })
}
