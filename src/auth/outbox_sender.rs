//! The outbox sender: a task of `custos serve` that delivers due outbox messages
//! (`super::outbox`) and deletes them. Several servers may run one each: a message is leased
//! (`FOR UPDATE SKIP LOCKED`, then hidden for [`super::outbox::LEASE`]) by the one that takes it.
//!
//! Delivery: SMTP through `lettre` when `CUSTOS_SMTP_URL` is set; otherwise, in development, an
//! append to `<CUSTOS_DATA_DIR>/outbox.mbox`, created with mode 0600 (only the operator who
//! runs the server reads it); in production without a relay, messages wait in the outbox.
//! A failed attempt is retried with back-off (`outbox::backoff`) up to
//! `CUSTOS_OUTBOX_MAX_ATTEMPTS`, counted in `custos_outbox_delivery_failures_total`; a
//! permanent refusal or the last attempt abandons the message. Every attempt is audited in the
//! organization's ledger (no actor; the invite and the patient as resources). Neither the
//! code nor the address is ever logged: errors are reduced to a class.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::outbox::{self, Due};
use crate::audit::{self, Action, AuditContext, AuditEvent, Outcome};
use crate::config::Environment;
use crate::db::{self, Claims};
use crate::metrics::{OUTBOX_ABANDONED as ABANDONED, OUTBOX_FAILURES as FAILURES, OUTBOX_SENT as SENT};
use crate::state::AppState;

/// The development outbox file under `CUSTOS_DATA_DIR`.
pub const DEV_FILE: &str = "outbox.mbox";

/// Messages taken per round.
const BATCH: i64 = 20;

/// Where messages go.
pub enum Transport {
    Smtp {
        relay: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// Development: appended to this file (mode 0600).
    File {
        path: PathBuf,
        from: Mailbox,
    },
    /// Production without a relay: nothing is delivered, messages wait.
    Held,
}

impl Transport {
    /// From the settings; an unusable `CUSTOS_SMTP_URL` or `CUSTOS_SMTP_FROM` stops start-up
    /// (the message names the variable, never its value).
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        let from: Mailbox = settings.outbox.from.parse().map_err(|_| {
            anyhow::anyhow!("CUSTOS_SMTP_FROM: must be an address like `Custos <no-reply@example.org>`")
        })?;
        match &settings.outbox.smtp_url {
            Some(url) => {
                let relay = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|_| anyhow::anyhow!("CUSTOS_SMTP_URL: must be a URL like smtps://user:pass@host"))?
                    .build();
                Ok(Self::Smtp { relay, from })
            }
            None if settings.environment == Environment::Development => {
                Ok(Self::File { path: settings.data_dir.join(DEV_FILE), from })
            }
            None => Ok(Self::Held),
        }
    }

    fn channel(&self) -> &'static str {
        match self {
            Self::Smtp { .. } => "smtp",
            Self::File { .. } => "development file",
            Self::Held => "held",
        }
    }
}

/// Why a delivery failed, as stored (`outbox_messages.last_error`) and logged: a class, never
/// the relay's words (they can quote the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The relay refused for good (5xx): abandoned at once.
    Permanent,
    /// The relay asked to try later (4xx).
    Transient,
    Timeout,
    Tls,
    /// Could not connect, or the conversation broke.
    Connection,
    /// The message could not be built or written (address, file).
    Local,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::Transient => "transient",
            Self::Timeout => "timeout",
            Self::Tls => "tls",
            Self::Connection => "connection",
            Self::Local => "local",
        }
    }

    fn of_smtp(e: &lettre::transport::smtp::Error) -> Self {
        if e.is_permanent() {
            Self::Permanent
        } else if e.is_transient() {
            Self::Transient
        } else if e.is_timeout() {
            Self::Timeout
        } else if e.is_tls() {
            Self::Tls
        } else {
            Self::Connection
        }
    }
}

/// Starts the sender of this server.
pub fn spawn(state: Arc<AppState>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let transport = Transport::from_settings(&state.settings)?;
    match &transport {
        Transport::Held => tracing::warn!(
            "CUSTOS_SMTP_URL is unset: outbox messages (patient invites) wait until a relay is configured"
        ),
        Transport::File { path, .. } => tracing::info!(
            file = %path.display(),
            "development outbox: CUSTOS_SMTP_URL is unset, patient invites are appended to this file (mode 0600)"
        ),
        Transport::Smtp { .. } => {}
    }
    Ok(tokio::spawn(run(state, transport)))
}

async fn run(state: Arc<AppState>, transport: Transport) {
    if matches!(transport, Transport::Held) {
        return;
    }
    loop {
        loop {
            match deliver_round(&state, &transport).await {
                Ok(n) if n == BATCH as usize => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox round failed; retrying later");
                    break;
                }
            }
        }
        tokio::select! {
            _ = state.outbox_wake.notified() => {}
            _ = tokio::time::sleep(state.settings.outbox.interval) => {}
        }
    }
}

/// Takes the due messages and tries each once; returns how many were taken.
pub async fn deliver_round(state: &AppState, transport: &Transport) -> Result<usize, sqlx::Error> {
    let now = state.clock.now();
    let mut tx = db::begin(&state.pool, &Claims::outbox(None)).await?;
    let due = outbox::take_due(&mut tx, now, BATCH).await?;
    tx.commit().await?;
    let n = due.len();
    for msg in due {
        let result = deliver(state, transport, &msg).await;
        settle(state, transport, &msg, result).await?;
    }
    Ok(n)
}

async fn deliver(state: &AppState, transport: &Transport, msg: &Due) -> Result<(), Failure> {
    let keyring = &state.crypto.keyring;
    let to = keyring
        .open_string_fresh("outbox_messages", "recipient_enc", msg.id, &msg.recipient_enc)
        .await
        .map_err(|_| Failure::Local)?;
    let text = keyring
        .open_string_fresh("outbox_messages", "body_enc", msg.id, &msg.body_enc)
        .await
        .map_err(|_| Failure::Local)?;
    let to: Mailbox = to.parse().map_err(|_| Failure::Permanent)?;
    let from = match transport {
        Transport::Smtp { from, .. } | Transport::File { from, .. } => from.clone(),
        Transport::Held => return Err(Failure::Local),
    };
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(outbox::INVITE_SUBJECT)
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_string())
        .map_err(|_| Failure::Local)?;
    match transport {
        Transport::Smtp { relay, .. } => relay.send(message).await.map(|_| ()).map_err(|e| Failure::of_smtp(&e)),
        Transport::File { path, .. } => {
            let path = path.clone();
            let bytes = message.formatted();
            tokio::task::spawn_blocking(move || append_private(&path, &bytes))
                .await
                .map_err(|_| Failure::Local)?
                .map_err(|_| Failure::Local)
        }
        Transport::Held => Err(Failure::Local),
    }
}

/// Appends one message to an mbox file only its owner can read or write (0600, enforced on
/// every append, in case someone widened it).
fn append_private(path: &std::path::Path, formatted: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let text = String::from_utf8_lossy(formatted).replace("\r\n", "\n");
    let mut record = format!("From custos {}\n", chrono::Utc::now().format("%a %b %e %H:%M:%S %Y"));
    for line in text.lines() {
        // mboxrd: a body line starting with "From " (after any '>') is quoted.
        if line.trim_start_matches('>').starts_with("From ") {
            record.push('>');
        }
        record.push_str(line);
        record.push('\n');
    }
    record.push('\n');
    file.write_all(record.as_bytes())?;
    file.sync_data()
}

/// Records the attempt and deletes or reschedules the message, in one transaction of the
/// message's organization.
async fn settle(
    state: &AppState,
    transport: &Transport,
    msg: &Due,
    result: Result<(), Failure>,
) -> Result<(), sqlx::Error> {
    let claims = Claims::outbox(Some(msg.org_id));
    let ctx = AuditContext::from_claims(&claims);
    let mut tx = db::begin(&state.pool, &claims).await?;
    let attempts = msg.attempts.saturating_add(1);
    let event = |outcome, reason: String| {
        AuditEvent::new(Action::Create, "invite_delivery", outcome)
            .resource(msg.invite_id)
            .resource(msg.id)
            .patient(msg.patient_id)
            .reason(reason)
    };
    let channel = transport.channel();
    let event = match result {
        Ok(()) => {
            outbox::delete(&mut tx, msg.id).await?;
            metrics::counter!(SENT).increment(1);
            event(
                Outcome::Success,
                format!("invite delivered to the patient's email on file ({channel}, attempt {attempts})"),
            )
        }
        Err(failure) => {
            metrics::counter!(FAILURES, "class" => failure.as_str()).increment(1);
            tracing::warn!(message_id = %msg.id, attempt = attempts, class = failure.as_str(), "outbox delivery failed");
            if failure == Failure::Permanent || attempts >= state.settings.outbox.max_attempts {
                outbox::delete(&mut tx, msg.id).await?;
                metrics::counter!(ABANDONED).increment(1);
                event(
                    Outcome::Error,
                    format!(
                        "invite delivery abandoned after attempt {attempts} ({channel}: {}); issue a new invite",
                        failure.as_str()
                    ),
                )
            } else {
                let next = state.clock.now() + outbox::backoff(attempts);
                outbox::retry_later(&mut tx, msg.id, attempts, next, failure.as_str()).await?;
                event(
                    Outcome::Error,
                    format!(
                        "invite delivery failed, attempt {attempts} ({channel}: {}); retried later",
                        failure.as_str()
                    ),
                )
            }
        }
    };
    audit::record(&mut tx, &ctx, &event).await?;
    tx.commit().await
}
