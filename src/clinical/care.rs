//! Care teams (admins assign clinicians to patients) and break-glass (a clinician's
//! time-limited, justified, flagged access to a patient outside their care team).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Req;
use super::error::ClinicalError;
use crate::db::ClaimRole;
use crate::domain::Reason;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CareTeamChange {
    pub clinician_id: Uuid,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CareTeamMember {
    pub clinician_id: Uuid,
    pub added_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BreakGlassRequest {
    /// Why, in at least 20 characters and 3 different words (invisible and combining characters
    /// do not count). Sealed at rest; auditors read it through an audited route.
    pub reason: String,
}

/// A [`BreakGlassRequest`] body, validated: the reason.
impl TryFrom<&BreakGlassRequest> for Reason {
    type Error = ClinicalError;

    fn try_from(input: &BreakGlassRequest) -> Result<Self, ClinicalError> {
        Ok(Reason::parse(&input.reason)?)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakGlassGrant {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub clinician_id: Uuid,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The live grant this one replaced (asking again while a grant is live renews it).
    pub renewed: Option<Uuid>,
}

/// The patient exists in the caller's org and the caller (an admin) sees it.
async fn admin_patient(req: &mut Req<'_>, patient: Uuid) -> Result<(), ClinicalError> {
    req.patient(patient);
    if !req.is(ClaimRole::Admin) {
        return Err(ClinicalError::NotFound);
    }
    let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM patients WHERE id = $1")
        .bind(patient)
        .fetch_optional(req.conn().await?)
        .await?;
    found.map(|_| ()).ok_or(ClinicalError::NotFound)
}

pub async fn list(req: &mut Req<'_>, patient: Uuid) -> Result<Vec<CareTeamMember>, ClinicalError> {
    admin_patient(req, patient).await?;
    let rows: Vec<(Uuid, Option<Uuid>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT clinician_id, added_by, created_at FROM care_team_members WHERE patient_id = $1 ORDER BY created_at, id",
    )
    .bind(patient)
    .fetch_all(req.conn().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(clinician_id, added_by, created_at)| CareTeamMember { clinician_id, added_by, created_at })
        .collect())
}

pub async fn add(req: &mut Req<'_>, patient: Uuid, input: &CareTeamChange) -> Result<CareTeamMember, ClinicalError> {
    admin_patient(req, patient).await?;
    req.resource(input.clinician_id);
    let role: Option<String> = sqlx::query_scalar("SELECT role::text FROM users WHERE id = $1 AND status = 'active'")
        .bind(input.clinician_id)
        .fetch_optional(req.conn().await?)
        .await?;
    if role.as_deref() != Some("clinician") {
        return Err(ClinicalError::validation("clinician_id", "must be an active clinician of your organization"));
    }
    let row: Option<(Uuid, Option<Uuid>, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO care_team_members (org_id, patient_id, clinician_id, added_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (patient_id, clinician_id) DO NOTHING RETURNING clinician_id, added_by, created_at",
    )
    .bind(req.user.org_id)
    .bind(patient)
    .bind(input.clinician_id)
    .bind(req.user.user_id)
    .fetch_optional(req.conn().await?)
    .await?;
    let (clinician_id, added_by, created_at) =
        row.ok_or_else(|| ClinicalError::Conflict("the clinician is already on this care team".into()))?;
    Ok(CareTeamMember { clinician_id, added_by, created_at })
}

pub async fn remove(req: &mut Req<'_>, patient: Uuid, clinician: Uuid) -> Result<(), ClinicalError> {
    admin_patient(req, patient).await?;
    req.resource(clinician);
    let n = sqlx::query("DELETE FROM care_team_members WHERE patient_id = $1 AND clinician_id = $2")
        .bind(patient)
        .bind(clinician)
        .execute(req.conn().await?)
        .await?
        .rows_affected();
    if n == 0 { Err(ClinicalError::NotFound) } else { Ok(()) }
}

/// The commitment to a break-glass reason that the ledger carries instead of its text:
/// HMAC-SHA-256 under a key derived from the KEK (the blind-index key, label
/// `break-glass-reason/v1`, scoped to the grant id, so equal reasons give unrelated values).
pub fn reason_commitment(req: &Req<'_>, grant: Uuid, reason: &str) -> [u8; 32] {
    req.state.crypto.blind.blind_index_scoped(REASON_COMMITMENT, grant, reason)
}

const REASON_COMMITMENT: &str = "break-glass-reason/v1";

/// Grants the calling clinician `CUSTOS_BREAK_GLASS_MINUTES` of access to `patient`.
///
/// One live grant per clinician and patient: asking again while one is live revokes it and
/// issues a fresh one from now (a renewal, recorded as such). At most
/// `CUSTOS_BREAK_GLASS_DAILY_LIMIT` patients per clinician in 24 hours (a renewal does not count
/// again); beyond it 403 `break_glass_daily_limit`, recorded by the audit wrapper. Requests of one
/// clinician for one patient are serialized (a transaction-scoped advisory lock), so parallel
/// requests cannot leave two live grants. The reason is sealed; the ledger event carries its
/// commitment ([`reason_commitment`]), never the text.
pub async fn break_glass(req: &mut Req<'_>, patient: Uuid, reason: Reason) -> Result<BreakGlassGrant, ClinicalError> {
    req.patient(patient);
    if !req.is(ClaimRole::Clinician) {
        return Err(ClinicalError::NotFound);
    }
    let clinician = req.user.user_id;
    let settings = &req.state.settings.clinical;
    let (minutes, daily_limit) = (settings.break_glass_minutes, settings.break_glass_daily_limit);
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('break-glass:' || $1::text, 0))")
        .bind(clinician)
        .execute(req.conn().await?)
        .await?;
    // Patients this clinician broke the glass into in the last 24 hours, other than this one.
    let others: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT patient_id) FROM break_glass_grants \
         WHERE clinician_id = $1 AND granted_at > now() - interval '24 hours' AND patient_id <> $2",
    )
    .bind(clinician)
    .bind(patient)
    .fetch_one(req.conn().await?)
    .await?;
    let renewed: Option<Uuid> = sqlx::query_scalar(
        "UPDATE break_glass_grants SET revoked_at = now() \
         WHERE clinician_id = $1 AND patient_id = $2 AND revoked_at IS NULL AND expires_at > now() RETURNING id",
    )
    .bind(clinician)
    .bind(patient)
    .fetch_optional(req.conn().await?)
    .await?;
    // Admins may have lifted the limit for the next 24 hours (break_glass_allowances).
    let extra: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(extra), 0)::bigint FROM break_glass_allowances WHERE clinician_id = $1 AND expires_at > now()",
    )
    .bind(clinician)
    .fetch_one(req.conn().await?)
    .await?;
    let daily_limit = daily_limit.saturating_add(extra);
    if renewed.is_none() && others >= daily_limit {
        return Err(ClinicalError::Forbidden {
            code: "break_glass_daily_limit",
            message: format!("at most {daily_limit} break-glass patients in 24 hours; an admin can lift the limit"),
        });
    }
    let id = Uuid::new_v4();
    let sealed = req
        .state
        .crypto
        .keyring
        .seal_str("break_glass_grants", "reason_enc", id, reason.as_str())
        .map_err(ClinicalError::internal)?;
    let commitment = reason_commitment(req, id, reason.as_str());
    let row: Result<(DateTime<Utc>, DateTime<Utc>), sqlx::Error> = sqlx::query_as(
        "INSERT INTO break_glass_grants (id, org_id, patient_id, clinician_id, reason_enc, reason_mac, granted_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now(), now() + make_interval(mins => $7)) RETURNING granted_at, expires_at",
    )
    .bind(id)
    .bind(req.user.org_id)
    .bind(patient)
    .bind(clinician)
    .bind(&sealed)
    .bind(&commitment[..])
    .bind(i32::try_from(minutes).unwrap_or(60))
    .fetch_one(req.conn().await?)
    .await;
    let (granted_at, expires_at) = match row {
        Ok(r) => r,
        // No such patient in this organization: the foreign key says so, the client hears 404.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23503") => return Err(ClinicalError::NotFound),
        Err(e) => return Err(e.into()),
    };
    req.resource(id);
    req.ev.break_glass = true;
    let mac = hex::encode(commitment);
    req.ev.reason = Some(match renewed {
        Some(old) => format!("break-glass grant {id} (renews grant {old}); reason sealed, hmac-sha256:{mac}"),
        None => format!("break-glass grant {id}; reason sealed, hmac-sha256:{mac}"),
    });
    Ok(BreakGlassGrant { id, patient_id: patient, clinician_id: clinician, granted_at, expires_at, renewed })
}

/// A break-glass reason as an auditor (or admin) reads it: the text, and whether it matches
/// the commitment the ledger carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakGlassReason {
    pub grant_id: Uuid,
    pub patient_id: Uuid,
    pub clinician_id: Uuid,
    pub granted_at: DateTime<Utc>,
    pub reason: String,
    /// HMAC-SHA-256 commitment (hex) as in the grant's ledger event; absent for grants made
    /// before reasons were sealed (their reason was stored, and logged, in plain text).
    pub commitment: Option<String>,
    /// The sealed text still matches its commitment.
    pub commitment_matches: Option<bool>,
}

type ReasonRow = (Uuid, Uuid, DateTime<Utc>, Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);

/// The reason of grant `grant` if the caller may see the grant (RLS), decrypted.
pub async fn grant_reason(req: &mut Req<'_>, grant: Uuid) -> Result<BreakGlassReason, ClinicalError> {
    req.resource(grant);
    if !(req.is(ClaimRole::Auditor) || req.is(ClaimRole::Admin)) {
        return Err(ClinicalError::NotFound);
    }
    let row: Option<ReasonRow> = sqlx::query_as(
        "SELECT patient_id, clinician_id, granted_at, reason, reason_enc, reason_mac FROM break_glass_grants WHERE id = $1",
    )
    .bind(grant)
    .fetch_optional(req.conn().await?)
    .await?;
    let (patient_id, clinician_id, granted_at, plain, sealed, mac) = row.ok_or(ClinicalError::NotFound)?;
    req.patient(patient_id);
    let reason = match (plain, sealed) {
        (Some(text), _) => text,
        (None, Some(sealed)) => req
            .state
            .crypto
            .keyring
            .open_string("break_glass_grants", "reason_enc", grant, &sealed)
            .map_err(ClinicalError::internal)?
            .to_string(),
        (None, None) => return Err(ClinicalError::internal(anyhow::anyhow!("break-glass grant without a reason"))),
    };
    let matches = mac.as_ref().map(|m| crate::auth::tokens::ct_eq(m, &reason_commitment(req, grant, &reason)));
    Ok(BreakGlassReason {
        grant_id: grant,
        patient_id,
        clinician_id,
        granted_at,
        reason,
        commitment: mac.map(hex::encode),
        commitment_matches: matches,
    })
}

/// The reasons of the grants `ids` the caller may see (RLS: the patient for grants into their
/// own record, admins and auditors of the organization), decrypted: for the access report.
pub async fn reasons_of(
    conn: &mut sqlx::PgConnection,
    keyring: &crate::crypto::store::LiveKeyring,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, ClinicalError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(Uuid, Option<String>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT id, reason, reason_enc FROM break_glass_grants WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(conn)
            .await?;
    let mut out = std::collections::HashMap::new();
    for (id, plain, sealed) in rows {
        let text = match (plain, sealed) {
            (Some(t), _) => t,
            (None, Some(s)) => keyring
                .open_string("break_glass_grants", "reason_enc", id, &s)
                .map_err(ClinicalError::internal)?
                .to_string(),
            (None, None) => continue,
        };
        out.insert(id, text);
    }
    Ok(out)
}

/// The grant a break-glass ledger line names: its reason starts `break-glass grant <id>` (the
/// grant itself and every access under it), since reasons were sealed.
pub fn grant_named_by(ledger_reason: Option<&str>) -> Option<Uuid> {
    ledger_reason?.strip_prefix("break-glass grant ")?.get(..36)?.parse().ok()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AllowanceRequest {
    /// The clinician whose daily break-glass limit is lifted.
    pub clinician_id: Uuid,
    /// Patients allowed on top of the limit for the next 24 hours (1–100).
    pub extra: i32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Allowance {
    pub id: Uuid,
    pub clinician_id: Uuid,
    pub granted_by: Uuid,
    pub extra: i32,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An admin lifts a clinician's break-glass daily limit by `extra` patients for 24 hours.
pub async fn lift_limit(req: &mut Req<'_>, input: &AllowanceRequest) -> Result<Allowance, ClinicalError> {
    req.resource(input.clinician_id);
    if !req.is(ClaimRole::Admin) {
        return Err(ClinicalError::NotFound);
    }
    if !(1..=100).contains(&input.extra) {
        return Err(ClinicalError::validation("extra", "must be between 1 and 100"));
    }
    let role: Option<String> = sqlx::query_scalar("SELECT role::text FROM users WHERE id = $1 AND status = 'active'")
        .bind(input.clinician_id)
        .fetch_optional(req.conn().await?)
        .await?;
    if role.as_deref() != Some("clinician") {
        return Err(ClinicalError::validation("clinician_id", "must be an active clinician of your organization"));
    }
    let id = Uuid::new_v4();
    let (granted_at, expires_at): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO break_glass_allowances (id, org_id, clinician_id, granted_by, extra, granted_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, now(), now() + interval '24 hours') RETURNING granted_at, expires_at",
    )
    .bind(id)
    .bind(req.user.org_id)
    .bind(input.clinician_id)
    .bind(req.user.user_id)
    .bind(input.extra)
    .fetch_one(req.conn().await?)
    .await?;
    req.resource(id);
    req.ev.reason = Some(format!("break-glass daily limit lifted by {} for 24 hours", input.extra));
    Ok(Allowance {
        id,
        clinician_id: input.clinician_id,
        granted_by: req.user.user_id,
        extra: input.extra,
        granted_at,
        expires_at,
    })
}

/// A break-glass grant as an admin reviews it: live or past, with its reason.
#[derive(Debug, Serialize)]
pub struct GrantSummary {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub clinician_id: Uuid,
    pub reason: String,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The organization's break-glass grants, newest first (admins, and auditors who review them;
/// RLS confines them to the organization). At most `limit`.
pub async fn list_grants(req: &mut Req<'_>, limit: i64) -> Result<Vec<GrantSummary>, ClinicalError> {
    if !(req.is(ClaimRole::Admin) || req.is(ClaimRole::Auditor)) {
        return Err(ClinicalError::Forbidden { code: "forbidden", message: "your role may not do this".into() });
    }
    type Row = (Uuid, Uuid, Uuid, Option<String>, Option<Vec<u8>>, DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>);
    // Reasons are sealed since issue 19 (`reason_enc`); older grants keep the plain `reason`.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, patient_id, clinician_id, reason, reason_enc, granted_at, expires_at, revoked_at \
         FROM break_glass_grants WHERE org_id = $1 ORDER BY granted_at DESC, id LIMIT $2",
    )
    .bind(req.user.org_id)
    .bind(limit)
    .fetch_all(req.conn().await?)
    .await?;
    req.ev.reason = Some(format!("break-glass grant list ({} rows)", rows.len()));
    let mut out = Vec::with_capacity(rows.len());
    for (id, patient_id, clinician_id, plain, sealed, granted_at, expires_at, revoked_at) in rows {
        let reason = match (plain, sealed) {
            (Some(text), _) => text,
            (None, Some(s)) => req.open("break_glass_grants", "reason_enc", id, &s)?,
            (None, None) => String::new(),
        };
        out.push(GrantSummary { id, patient_id, clinician_id, reason, granted_at, expires_at, revoked_at });
    }
    Ok(out)
}
