//! The facts of one organization the explanations and detectors read, loaded by the engine
//! (as `custos_monitor`) before each pass: relationships with the time they began, staff
//! profiles' blind indexes, patients' blind indexes and flags, working hours. Sealed values
//! the engine must read (a date of death) are opened here and never leave the process.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::hours::WorkingHours;
use super::normalize;
use crate::crypto::store::FieldCrypto;

/// `[from, to)`.
pub type Interval = (DateTime<Utc>, DateTime<Utc>);
/// A row holding two optional blind indexes.
type KeyRow<T> = (Uuid, Option<Vec<u8>>, Option<Vec<u8>>, T);

/// One staff member's profile, as blind indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaffFacts {
    pub family_name: Option<[u8; 32]>,
    pub address: Option<[u8; 32]>,
    /// The patient record that is this employee.
    pub patient: Option<Uuid>,
}

/// A patient's blind indexes (computed by the engine from the sealed demographics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientKeys {
    pub family_name: Option<[u8; 32]>,
    pub address: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientFlags {
    pub confidential: bool,
    pub deceased_on: Option<NaiveDate>,
}

/// Everything the rules know about an organization.
#[derive(Debug, Clone, Default)]
pub struct OrgContext {
    /// (user, patient) → since when the relationship held.
    pub care_team: HashMap<(Uuid, Uuid), DateTime<Utc>>,
    pub conversations: HashMap<(Uuid, Uuid), DateTime<Utc>>,
    pub prescribers: HashMap<(Uuid, Uuid), DateTime<Utc>>,
    /// (clinician, patient) → grant intervals `[granted, min(expires, revoked))`.
    pub grants: HashMap<(Uuid, Uuid), Vec<Interval>>,
    /// patient → their portal account.
    pub portal_accounts: HashMap<Uuid, Uuid>,
    pub staff: HashMap<Uuid, StaffFacts>,
    /// patient → the staff member that patient record belongs to.
    pub employees: HashMap<Uuid, Uuid>,
    pub patient_keys: HashMap<Uuid, PatientKeys>,
    pub flags: HashMap<Uuid, PatientFlags>,
    pub hours: Option<WorkingHours>,
    /// The organization's IANA time zone (UTC when unset).
    pub time_zone: String,
}

/// Why the context could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A sealed value did not open (wrong keys, or a moved/altered ciphertext): no PHI here.
    #[error("a sealed {0} did not open: {1}")]
    Sealed(&'static str, crate::crypto::CryptoError),
}

fn key32(v: Option<Vec<u8>>) -> Option<[u8; 32]> {
    v.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
}

fn earliest(m: &mut HashMap<(Uuid, Uuid), DateTime<Utc>>, k: (Uuid, Uuid), t: DateTime<Utc>) {
    m.entry(k).and_modify(|e| *e = (*e).min(t)).or_insert(t);
}

/// Computes the blind indexes of patients whose demographics changed since last time (or
/// were never indexed). Runs in the caller's transaction, as `custos_monitor`.
pub async fn refresh_patient_keys(
    conn: &mut PgConnection,
    org: Uuid,
    crypto: &FieldCrypto,
) -> Result<usize, ContextError> {
    type Row = (Uuid, Vec<u8>, Option<Vec<u8>>, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.id, p.family_name_enc, p.address_enc, p.updated_at FROM patients p \
         LEFT JOIN monitor_patient_keys k ON k.patient_id = p.id \
         WHERE p.org_id = $1 AND (k.patient_id IS NULL OR k.source_updated_at < p.updated_at)",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (mut ids, mut fam, mut addr, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, fam_enc, addr_enc, updated) in rows {
        let name = crypto
            .keyring
            .open_string_fresh("patients", "family_name_enc", id, &fam_enc)
            .await
            .map_err(|e| ContextError::Sealed("family name", e))?;
        let address = match addr_enc {
            Some(a) => Some(
                crypto
                    .keyring
                    .open_string_fresh("patients", "address_enc", id, &a)
                    .await
                    .map_err(|e| ContextError::Sealed("address", e))?,
            ),
            None => None,
        };
        ids.push(id);
        fam.push(
            normalize::family_name(&name)
                .map(|n| crypto.blind.blind_index_scoped(normalize::FAMILY_NAME_KIND, org, &n).to_vec()),
        );
        addr.push(
            address
                .as_deref()
                .and_then(|a| normalize::address(a))
                .map(|n| crypto.blind.blind_index_scoped(normalize::ADDRESS_KIND, org, &n).to_vec()),
        );
        at.push(updated);
    }
    let n = ids.len();
    // bytea[] with NULLs: sent as a JSON array of hex strings keeps the statement simple.
    let hex = |v: &Vec<Option<Vec<u8>>>| {
        serde_json::Value::from(v.iter().map(|b| b.as_ref().map(hex::encode)).collect::<Vec<_>>())
    };
    sqlx::query(
        "INSERT INTO monitor_patient_keys (patient_id, org_id, family_name_bidx, address_bidx, source_updated_at) \
         SELECT u.id, $2, decode(f.v, 'hex'), decode(a.v, 'hex'), u.at \
         FROM unnest($1::uuid[], $5::timestamptz[]) WITH ORDINALITY AS u(id, at, i) \
         JOIN jsonb_array_elements_text($3) WITH ORDINALITY AS f(v, i) USING (i) \
         JOIN jsonb_array_elements_text($4) WITH ORDINALITY AS a(v, i) USING (i) \
         ON CONFLICT (patient_id) DO UPDATE SET family_name_bidx = EXCLUDED.family_name_bidx, \
             address_bidx = EXCLUDED.address_bidx, source_updated_at = EXCLUDED.source_updated_at",
    )
    .bind(&ids)
    .bind(org)
    .bind(hex(&fam))
    .bind(hex(&addr))
    .bind(&at)
    .execute(&mut *conn)
    .await?;
    Ok(n)
}

/// Loads the organization's facts (as `custos_monitor`, in the caller's transaction).
pub async fn load(conn: &mut PgConnection, org: Uuid, crypto: &FieldCrypto) -> Result<OrgContext, ContextError> {
    let mut ctx = OrgContext { time_zone: "UTC".into(), ..OrgContext::default() };
    let pairs = |sql: &'static str| sqlx::query_as::<_, (Uuid, Uuid, DateTime<Utc>)>(sql).bind(org);
    for (u, p, t) in pairs("SELECT clinician_id, patient_id, created_at FROM care_team_members WHERE org_id = $1")
        .fetch_all(&mut *conn)
        .await?
    {
        earliest(&mut ctx.care_team, (u, p), t);
    }
    for (u, p, t) in pairs(
        "SELECT assigned_clinician_id, patient_id, created_at FROM conversations \
         WHERE org_id = $1 AND assigned_clinician_id IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?
    {
        earliest(&mut ctx.conversations, (u, p), t);
    }
    for (u, p, t) in pairs("SELECT prescriber_id, patient_id, issued_at FROM prescriptions WHERE org_id = $1")
        .fetch_all(&mut *conn)
        .await?
    {
        earliest(&mut ctx.prescribers, (u, p), t);
    }
    let grants: Vec<(Uuid, Uuid, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT clinician_id, patient_id, granted_at, least(expires_at, coalesce(revoked_at, expires_at)) \
         FROM break_glass_grants WHERE org_id = $1",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    for (u, p, from, to) in grants {
        ctx.grants.entry((u, p)).or_default().push((from, to));
    }
    let accounts: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT id, user_id FROM patients WHERE org_id = $1 AND user_id IS NOT NULL")
            .bind(org)
            .fetch_all(&mut *conn)
            .await?;
    ctx.portal_accounts = accounts.into_iter().collect();
    let staff: Vec<KeyRow<Option<Uuid>>> = sqlx::query_as(
        "SELECT user_id, family_name_bidx, address_bidx, patient_id FROM staff_profiles WHERE org_id = $1",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    for (u, f, a, p) in staff {
        if let Some(p) = p {
            ctx.employees.insert(p, u);
        }
        ctx.staff.insert(u, StaffFacts { family_name: key32(f), address: key32(a), patient: p });
    }
    let keys: Vec<KeyRow<bool>> = sqlx::query_as(
        "SELECT patient_id, family_name_bidx, address_bidx, true FROM monitor_patient_keys WHERE org_id = $1 \
         AND (family_name_bidx IS NOT NULL OR address_bidx IS NOT NULL)",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    for (p, f, a, _) in keys {
        ctx.patient_keys.insert(p, PatientKeys { family_name: key32(f), address: key32(a) });
    }
    let flags: Vec<(Uuid, bool, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT patient_id, confidential, deceased_on_enc FROM patient_flags WHERE org_id = $1")
            .bind(org)
            .fetch_all(&mut *conn)
            .await?;
    for (p, confidential, died) in flags {
        let deceased_on = match died {
            Some(enc) => {
                let s = crypto
                    .keyring
                    .open_string_fresh("patient_flags", "deceased_on_enc", p, &enc)
                    .await
                    .map_err(|e| ContextError::Sealed("date of death", e))?;
                NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()
            }
            None => None,
        };
        ctx.flags.insert(p, PatientFlags { confidential, deceased_on });
    }
    let hours: Option<(String, serde_json::Value)> =
        sqlx::query_as("SELECT time_zone, days FROM org_working_hours WHERE org_id = $1")
            .bind(org)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((tz, days)) = hours {
        ctx.time_zone = tz;
        ctx.hours = WorkingHours::from_json(&days);
    }
    Ok(ctx)
}
