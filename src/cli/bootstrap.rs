//! `custos bootstrap`: the first organization and its first admin, with a random one-time
//! password returned once. The admin must change it (and enrol MFA) at first login.

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

use super::CliError;
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::crypto::{BlindIndexKind, Kek};
use crate::db::{self, Claims};
use crate::domain::Email;
use crate::keys::RootKeys;

/// What bootstrap created.
pub struct Bootstrapped {
    pub org_id: Uuid,
    pub admin_id: Uuid,
    pub email: String,
    pub one_time_password: SecretString,
}

pub use crate::auth::users::one_time_password;

pub async fn run(pool: &PgPool, keys: &RootKeys, org_name: &str, admin_email: &str) -> Result<Bootstrapped, CliError> {
    let org_name = org_name.trim();
    if org_name.is_empty() || org_name.chars().count() > 200 {
        return Err(CliError::Usage("--org must be 1 to 200 characters".into()));
    }
    let email = Email::parse(admin_email).map_err(|e| CliError::Usage(format!("--admin-email: {e}")))?;
    let kek = Kek::from_bytes(*keys.kek.expose());
    let crypto = crate::crypto::store::load(pool, &kek).await.map_err(anyhow::Error::from)?;
    let email_bidx = crypto.blind.index(BlindIndexKind::Email, email.as_str());

    // The sign-in context sees no rows until an account is pinned; the email look-up function
    // is how it (and this early check) asks "is this email taken?". A taken organization name
    // is caught by its unique index below.
    let mut tx = db::begin(pool, &Claims::auth(None)).await.context("database")?;
    let taken: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM custos.auth_user_by_email($1))")
        .bind(&email_bidx[..])
        .fetch_one(&mut *tx)
        .await
        .context("database")?;
    if taken {
        return Err(CliError::Runtime(anyhow::anyhow!("a user with that email already exists; nothing was created")));
    }

    let password = one_time_password();
    let hash = {
        let pw = password.clone();
        crate::telemetry::spawn_blocking_in_span(move || crate::auth::password::hash_password(&pw))
            .await
            .context("password hashing task")?
            .context("password hashing")?
    };

    let org_id = Uuid::now_v7();
    let admin_id = Uuid::now_v7();
    db::tx::set_claims(&mut tx, &Claims::system(Some(org_id))).await.context("database")?;
    sqlx::query("INSERT INTO organizations (id, name) VALUES ($1, $2)")
        .bind(org_id)
        .bind(org_name)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_runtime(e, "organization"))?;
    let email_enc = crypto.keyring.seal_str("users", "email_enc", admin_id, email.as_str()).context("sealing")?;
    sqlx::query(
        "INSERT INTO users (id, org_id, role, email_enc, email_bidx, password_hash, must_change_password) \
         VALUES ($1, $2, 'admin', $3, $4, $5, true)",
    )
    .bind(admin_id)
    .bind(org_id)
    .bind(&email_enc)
    .bind(&email_bidx[..])
    .bind(&hash)
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict_or_runtime(e, "user"))?;
    let ctx = AuditContext { org_id: Some(org_id), actor_role: Some("system"), ..AuditContext::default() };
    // One event per resource, each id under its own type (the FHIR export types entities by
    // resource type; a single event once named the admin's user id an organization).
    let events = [
        AuditEvent::new(Action::Admin, "organization", Outcome::Success)
            .resource(org_id)
            .reason("bootstrap: organization created"),
        AuditEvent::new(Action::Admin, "user", Outcome::Success)
            .resource(admin_id)
            .reason("bootstrap: first admin created"),
    ];
    for event in &events {
        audit::record(&mut tx, &ctx, event).await.context("audit")?;
    }
    tx.commit().await.context("database")?;
    Ok(Bootstrapped { org_id, admin_id, email: email.as_str().to_owned(), one_time_password: password })
}

fn conflict_or_runtime(e: sqlx::Error, what: &str) -> CliError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
            CliError::Runtime(anyhow::anyhow!("that {what} already exists; nothing was created"))
        }
        _ => CliError::Runtime(anyhow::Error::from(e).context("database")),
    }
}

/// Exposes the password for printing; kept separate so the only place it leaves the
/// process is the explicit stdout line of the command.
pub fn reveal(p: &SecretString) -> &str {
    p.expose_secret()
}
