//! Prescriber profiles: what a pharmacist needs to dispense from a printed prescription — the
//! prescriber's full name, credentials, NPI, DEA number (required to prescribe controlled
//! substances), practice name, address and phone. Admins set them with the staff profile
//! (`PUT /v1/admin/users/{id}/profile`); the change is audited in the same transaction (which
//! facts were set, never their values). Public professional identifiers, stored in the clear.

use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::ClinicalError;
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::domain::{DeaNumber, DomainError, Npi, PersonName, Phone, Rule};

/// The prescriber fields of a staff profile body, as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriberInput {
    /// Full name as licensed, e.g. `Maria Łopez-Nguyễn`. Required with any other field.
    pub full_name: Option<String>,
    /// Credentials printed after the name, e.g. `MD` or `DO, MPH`.
    pub credentials: Option<String>,
    /// National Provider Identifier: 10 digits, valid check digit (Luhn with prefix 80840).
    pub npi: Option<String>,
    /// DEA registration: 2 letters, 7 digits, valid check digit. Needed to prescribe a
    /// controlled substance (a prescription with a `schedule`).
    pub dea_number: Option<String>,
    pub practice_name: Option<String>,
    /// Postal address of the practice, lines separated by newlines.
    pub practice_address: Option<String>,
    /// E.164 phone number of the practice.
    pub practice_phone: Option<String>,
}

/// A complete, valid prescriber profile.
#[derive(Debug, Clone)]
pub struct Prescriber {
    pub full_name: String,
    pub credentials: Option<String>,
    pub npi: Npi,
    pub dea_number: Option<DeaNumber>,
    pub practice_name: String,
    pub practice_address: String,
    pub practice_phone: Phone,
}

fn text(field: &'static str, v: Option<&str>, max: usize) -> Result<Option<String>, DomainError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if v.chars().count() > max {
        return Err(DomainError::new(field, Rule::TooLong { max }));
    }
    // Newlines separate address lines; no other control character prints.
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DomainError::new(field, Rule::ControlCharacter));
    }
    Ok(Some(v.to_owned()))
}

impl PrescriberInput {
    /// `None` when no prescriber field is given (the profile is cleared).
    pub fn parse(&self) -> Result<Option<Prescriber>, DomainError> {
        let given = [
            &self.full_name,
            &self.credentials,
            &self.npi,
            &self.dea_number,
            &self.practice_name,
            &self.practice_address,
            &self.practice_phone,
        ]
        .iter()
        .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()));
        if !given {
            return Ok(None);
        }
        let required = |field: &'static str, v: Option<String>| v.ok_or_else(|| DomainError::new(field, Rule::Empty));
        let full_name = match self.full_name.as_deref() {
            Some(n) => PersonName::parse(n).map_err(|e| e.with_field("full_name"))?.as_str().to_owned(),
            None => return Err(DomainError::new("full_name", Rule::Empty)),
        };
        Ok(Some(Prescriber {
            full_name,
            credentials: text("credentials", self.credentials.as_deref(), 100)?,
            npi: Npi::parse(self.npi.as_deref().unwrap_or(""))?,
            dea_number: match self.dea_number.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
                Some(d) => Some(DeaNumber::parse(d)?),
                None => None,
            },
            practice_name: required("practice_name", text("practice_name", self.practice_name.as_deref(), 200)?)?,
            practice_address: required(
                "practice_address",
                text("practice_address", self.practice_address.as_deref(), 500)?,
            )?,
            practice_phone: Phone::parse(self.practice_phone.as_deref().unwrap_or(""))
                .map_err(|e| e.with_field("practice_phone"))?,
        }))
    }
}

/// Sets (or, with `None`, clears) the prescriber profile of `user`, a clinician of the admin's
/// organization (the caller checked the user exists there), and records the change.
pub async fn put(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    org: Uuid,
    admin: Uuid,
    user: Uuid,
    profile: Option<&Prescriber>,
) -> Result<(), ClinicalError> {
    if let Some(p) = profile {
        let role: Option<String> = sqlx::query_scalar("SELECT role::text FROM users WHERE id = $1 AND org_id = $2")
            .bind(user)
            .bind(org)
            .fetch_optional(&mut *conn)
            .await?;
        if role.as_deref() != Some("clinician") {
            return Err(ClinicalError::validation("npi", "only clinicians prescribe"));
        }
        sqlx::query(
            "INSERT INTO prescriber_profiles (user_id, org_id, full_name, credentials, npi, dea_number, practice_name, \
                 practice_address, practice_phone, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (user_id) DO UPDATE SET full_name = EXCLUDED.full_name, credentials = EXCLUDED.credentials, \
                 npi = EXCLUDED.npi, dea_number = EXCLUDED.dea_number, practice_name = EXCLUDED.practice_name, \
                 practice_address = EXCLUDED.practice_address, practice_phone = EXCLUDED.practice_phone, \
                 updated_by = EXCLUDED.updated_by",
        )
        .bind(user)
        .bind(org)
        .bind(&p.full_name)
        .bind(&p.credentials)
        .bind(p.npi.as_str())
        .bind(p.dea_number.as_ref().map(DeaNumber::as_str))
        .bind(&p.practice_name)
        .bind(&p.practice_address)
        .bind(p.practice_phone.as_str())
        .bind(admin)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query("DELETE FROM prescriber_profiles WHERE user_id = $1 AND org_id = $2")
            .bind(user)
            .bind(org)
            .execute(&mut *conn)
            .await?;
    }
    let what = match profile {
        Some(p) if p.dea_number.is_some() => "prescriber profile set (with DEA number)",
        Some(_) => "prescriber profile set (no DEA number)",
        None => "prescriber profile cleared",
    };
    let ev = AuditEvent::new(Action::Admin, "prescriber_profile", Outcome::Success).resource(user).reason(what);
    audit::record(conn, ctx, &ev).await?;
    Ok(())
}

/// The prescriber profile of `user`, if the caller's organization has one on file.
pub async fn get(conn: &mut PgConnection, user: Uuid) -> Result<Option<Prescriber>, ClinicalError> {
    type Row = (String, Option<String>, String, Option<String>, String, String, String);
    let row: Option<Row> = sqlx::query_as(
        "SELECT full_name, credentials, npi, dea_number, practice_name, practice_address, practice_phone \
         FROM prescriber_profiles WHERE user_id = $1",
    )
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((full_name, credentials, npi, dea, practice_name, practice_address, phone)) = row else {
        return Ok(None);
    };
    // Stored values passed these checks on the way in; a row that no longer does is a bug.
    let bad =
        |e: DomainError| ClinicalError::internal(anyhow::anyhow!("stored prescriber profile invalid: {}", e.field()));
    Ok(Some(Prescriber {
        full_name,
        credentials,
        npi: Npi::parse(&npi).map_err(bad)?,
        dea_number: dea.as_deref().map(DeaNumber::parse).transpose().map_err(bad)?,
        practice_name,
        practice_address,
        practice_phone: Phone::parse(&phone).map_err(bad)?,
    }))
}
