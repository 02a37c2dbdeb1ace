//! Typed settings read from the environment (and `.env` when present).
//!
//! Secrets stay `SecretString` until the key material is decoded in [`crate::keys`], and the
//! `Debug` output of [`Settings`] never shows them (secrecy redacts them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Where the process runs. Production refuses development conveniences (generated keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Everything the server and the commands need to know about their surroundings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    /// Explicit database; `None` means "find or start a local PostgreSQL" (see `db::locate`).
    pub database_url: Option<SecretString>,
    pub db_max_connections: u32,
    pub bind: SocketAddr,
    /// Folder for development keys and a private PostgreSQL cluster.
    pub data_dir: PathBuf,
    pub kek: Option<SecretString>,
    pub jwt_signing_key: Option<SecretString>,
    pub ledger_signing_key: Option<SecretString>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Origins allowed by CORS (the portals); empty = CORS off.
    pub cors_origins: Vec<String>,
    pub json_limit_bytes: usize,
    pub shutdown_timeout: Duration,
    /// How long a client has to send a request's head, counted from when the server takes the
    /// connection (`CUSTOS_CLIENT_REQUEST_TIMEOUT_SECS`, 30). actix's own default, 5 s, resets
    /// every request that arrived while the server was paused (a stop-the-world moment, a
    /// VM migration) for longer than that; 30 s outlasts such pauses while still closing
    /// connections that never send a request.
    pub client_request_timeout: Duration,
    /// How often a server re-reads `encryption_keys`, so new writes move to a rotated data
    /// key (`CUSTOS_KEY_RELOAD_SECS`, 30). Start `custos keys rewrap` one interval after
    /// `custos keys rotate`.
    pub key_reload: Duration,
    pub log_filter: String,
    /// Sign-in, session and lockout rules.
    pub auth: AuthSettings,
    /// Attachment limits and break-glass duration.
    pub clinical: ClinicalSettings,
    /// Audit ledger settings (sequencer, checkpoints).
    pub ledger: LedgerSettings,
    /// The metrics listener (`crate::metrics`).
    pub metrics: MetricsSettings,
    /// How the outbox reaches patients (invite codes): SMTP, or a development file.
    pub outbox: OutboxSettings,
}

/// The outbox sender of `custos serve` (`crate::auth::outbox_sender`, docs/architecture.md).
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// `CUSTOS_SMTP_URL`: the relay, e.g. `smtps://user:pass@smtp.example.org` (implicit TLS),
    /// `smtp://smtp.example.org:587?tls=required` (STARTTLS) or `smtp://127.0.0.1:25` (plain,
    /// a local relay). A secret: it may carry credentials. Unset: in development, messages
    /// are appended to `<CUSTOS_DATA_DIR>/outbox.mbox` (mode 0600); in production they wait
    /// in the outbox until a relay is configured.
    pub smtp_url: Option<SecretString>,
    /// `CUSTOS_SMTP_FROM`: the sender address (`Custos <no-reply@clinic.example>`;
    /// default `Custos <no-reply@localhost>`).
    pub from: String,
    /// `CUSTOS_OUTBOX_INTERVAL_MS` (5000): how often the sender looks for due messages when
    /// nothing woke it (an invite issued by this server wakes it at once).
    pub interval: Duration,
    /// `CUSTOS_OUTBOX_MAX_ATTEMPTS` (8): delivery attempts before a message is abandoned (its
    /// code deleted, the failure audited); the wait doubles from 30 s up to an hour.
    pub max_attempts: i32,
}

/// Where Prometheus scrapes, and what it may learn.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// `CUSTOS_METRICS_BIND`: the metrics listener's address (never the API port); unset: no
    /// metrics listener. Keep it on loopback or a management network.
    pub bind: Option<SocketAddr>,
    /// `CUSTOS_METRICS_TENANT_LABELS=on`: also export per-ledger (per-organization) series.
    /// Off by default: a scrape then names no organization and counts none of their events.
    pub tenant_labels: bool,
}

/// Clinical API limits.
#[derive(Debug, Clone)]
pub struct ClinicalSettings {
    /// Largest attachment accepted (`CUSTOS_ATTACHMENT_MAX_BYTES`, 10 MiB).
    pub attachment_max_bytes: usize,
    /// How long a break-glass grant lasts (`CUSTOS_BREAK_GLASS_MINUTES`, 60; at most 24 h).
    pub break_glass_minutes: i64,
    /// Break-glass grants a clinician may take in 24 hours, counted by patient
    /// (`CUSTOS_BREAK_GLASS_DAILY_LIMIT`, 5); renewing a live grant does not count again.
    pub break_glass_daily_limit: i64,
}

impl ClinicalSettings {
    fn from_lookup(non_empty: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            attachment_max_bytes: parse_num(non_empty, "CUSTOS_ATTACHMENT_MAX_BYTES", 10 << 20, 1, 512 << 20)?,
            break_glass_minutes: parse_num(non_empty, "CUSTOS_BREAK_GLASS_MINUTES", 60, 1, 1440)?,
            break_glass_daily_limit: parse_num(non_empty, "CUSTOS_BREAK_GLASS_DAILY_LIMIT", 5, 1, 1000)?,
        })
    }
}

/// Sign-in and session settings (NIST SP 800-63B AAL2, ASVS V2/V3, HIPAA automatic logoff).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A session with no request for this long is dead (`CUSTOS_SESSION_IDLE_TIMEOUT_SECS`, 900).
    pub idle_timeout: Duration,
    /// A session dies this long after sign-in, active or not (`CUSTOS_SESSION_ABSOLUTE_TIMEOUT_SECS`, 43200).
    pub absolute_lifetime: Duration,
    /// Access-token lifetime, 5–15 minutes (`CUSTOS_ACCESS_TOKEN_TTL_SECS`, 600).
    pub access_token_ttl: Duration,
    /// Consecutive failed password/MFA attempts that lock an account (`CUSTOS_LOCKOUT_THRESHOLD`, 5).
    pub lockout_threshold: i32,
    /// How long a lock lasts (`CUSTOS_LOCKOUT_DURATION_SECS`, 900).
    pub lockout_duration: Duration,
    /// Requests per minute per client IP on `/v1/auth/*` (`CUSTOS_AUTH_RATE_PER_MINUTE`, 60).
    pub rate_per_minute: u64,
    /// Argon2id memory in KiB (`CUSTOS_ARGON2_M_KIB`, 19456), iterations
    /// (`CUSTOS_ARGON2_T`, 2) and lanes (`CUSTOS_ARGON2_P`, 1); never below OWASP's minimum.
    pub argon2: Argon2Params,
    /// Password hashes computed at once (`CUSTOS_PASSWORD_HASH_CONCURRENCY`; default: CPUs - 1,
    /// at least 1), so a burst of logins cannot take every core from other requests.
    pub hash_concurrency: usize,
    /// Extra Ed25519 public keys (base64, comma-separated) whose access tokens are still
    /// accepted after a signing-key rotation (`CUSTOS_JWT_PREVIOUS_PUBLIC_KEYS`).
    pub jwt_previous_public_keys: Vec<String>,
    /// The WebAuthn relying party: its id, a registrable domain (`CUSTOS_WEBAUTHN_RP_ID`,
    /// `localhost`), and the web origin the passkey ceremonies run in
    /// (`CUSTOS_WEBAUTHN_ORIGIN`, `http://localhost:8080`: the development server).
    pub webauthn_rp_id: String,
    pub webauthn_origin: webauthn_rs::prelude::Url,
}

impl AuthSettings {
    fn from_lookup(non_empty: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secs = |var, default, min, max| parse_num(non_empty, var, default, min, max).map(Duration::from_secs);
        let default_m = Argon2Params::default();
        let m = parse_num(non_empty, "CUSTOS_ARGON2_M_KIB", default_m.m_cost_kib(), default_m.m_cost_kib(), 4 << 20)?;
        let t = parse_num(non_empty, "CUSTOS_ARGON2_T", default_m.t_cost(), default_m.t_cost(), 100)?;
        let p = parse_num(non_empty, "CUSTOS_ARGON2_P", default_m.p_cost(), default_m.p_cost(), 64)?;
        let argon2 = Argon2Params::new(m, t, p)
            .map_err(|e| ConfigError { var: "CUSTOS_ARGON2_M_KIB", problem: e.to_string() })?;
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let s = Self {
            idle_timeout: secs("CUSTOS_SESSION_IDLE_TIMEOUT_SECS", 900, 60, 86_400)?,
            absolute_lifetime: secs("CUSTOS_SESSION_ABSOLUTE_TIMEOUT_SECS", 43_200, 300, 7 * 86_400)?,
            access_token_ttl: secs("CUSTOS_ACCESS_TOKEN_TTL_SECS", 600, 300, 900)?,
            lockout_threshold: parse_num(non_empty, "CUSTOS_LOCKOUT_THRESHOLD", 5, 1, 100)?,
            lockout_duration: secs("CUSTOS_LOCKOUT_DURATION_SECS", 900, 60, 86_400)?,
            rate_per_minute: parse_num(non_empty, "CUSTOS_AUTH_RATE_PER_MINUTE", 60, 1, 1_000_000)?,
            argon2,
            hash_concurrency: parse_num(
                non_empty,
                "CUSTOS_PASSWORD_HASH_CONCURRENCY",
                cpus.saturating_sub(1).max(1),
                1,
                1024,
            )?,
            jwt_previous_public_keys: non_empty("CUSTOS_JWT_PREVIOUS_PUBLIC_KEYS")
                .map(|v| v.split(',').map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect())
                .unwrap_or_default(),
            webauthn_rp_id: non_empty("CUSTOS_WEBAUTHN_RP_ID").unwrap_or_else(|| "localhost".into()),
            webauthn_origin: non_empty("CUSTOS_WEBAUTHN_ORIGIN")
                .unwrap_or_else(|| "http://localhost:8080".into())
                .parse()
                .map_err(|_| bad("CUSTOS_WEBAUTHN_ORIGIN", "must be an origin like https://custos.example.org"))?,
        };
        if s.absolute_lifetime < s.idle_timeout {
            return Err(bad(
                "CUSTOS_SESSION_ABSOLUTE_TIMEOUT_SECS",
                "must not be shorter than CUSTOS_SESSION_IDLE_TIMEOUT_SECS",
            ));
        }
        Ok(s)
    }
}

/// How the audit sequencer batches and signs.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// Checkpoint origin prefix and signing key name (`<origin>/<ledger id>` per ledger).
    pub origin: String,
    /// Also write every checkpoint under this directory (a copy outside the database).
    pub checkpoint_mirror: Option<PathBuf>,
    /// Run a sequencer candidate inside `custos serve`.
    pub sequencer_in_server: bool,
    /// Inbox rows claimed per batch.
    pub batch_size: u32,
    /// Pause between batches when the inbox is drained.
    pub batch_interval: Duration,
    /// A growing ledger gets a new signed checkpoint at least this often.
    pub checkpoint_interval: Duration,
    /// Key rotation: a second signing key (base64 seed) that co-signs every checkpoint during
    /// a change-over, so verifiers can move to it before the old key is retired.
    pub next_signing_key: Option<SecretString>,
    /// Key rotation: retired verifier keys (`name+id+key`) still accepted for old checkpoints.
    pub previous_keys: Vec<String>,
    /// Witnesses that cosign every new checkpoint (`CUSTOS_WITNESSES`: comma-separated
    /// `<submission URL> <vkey>` pairs; c2sp.org/tlog-witness): (URL, vkey).
    pub witnesses: Vec<(String, String)>,
}

/// A setting that is present but unusable; the message names the variable, never its value.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl Settings {
    /// Reads `.env` (if any) and then the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported by the first bad variable.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds settings from any key → value lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let secret = |k: &str| non_empty(k).map(SecretString::from);
        let environment = match non_empty("CUSTOS_ENV").as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(_) => return Err(bad("CUSTOS_ENV", "must be `development` or `production`")),
        };
        let bind = non_empty("CUSTOS_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .map_err(|_| bad("CUSTOS_BIND", "must be an address like 127.0.0.1:8080"))?;
        Ok(Self {
            environment,
            database_url: secret("DATABASE_URL"),
            db_max_connections: parse_num(&non_empty, "CUSTOS_DB_MAX_CONNECTIONS", 20, 1, 1000)?,
            bind,
            data_dir: non_empty("CUSTOS_DATA_DIR").unwrap_or_else(|| ".custos".into()).into(),
            kek: secret("CUSTOS_KEK"),
            jwt_signing_key: secret("CUSTOS_JWT_SIGNING_KEY"),
            ledger_signing_key: secret("CUSTOS_LEDGER_SIGNING_KEY"),
            tls_cert: non_empty("CUSTOS_TLS_CERT").map(PathBuf::from),
            tls_key: non_empty("CUSTOS_TLS_KEY").map(PathBuf::from),
            cors_origins: non_empty("CUSTOS_CORS_ORIGINS")
                .map(|v| v.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            json_limit_bytes: parse_num(&non_empty, "CUSTOS_JSON_LIMIT_BYTES", 256 * 1024, 1024, 64 << 20)?,
            shutdown_timeout: Duration::from_secs(parse_num(&non_empty, "CUSTOS_SHUTDOWN_TIMEOUT_SECS", 30, 1, 3600)?),
            client_request_timeout: Duration::from_secs(parse_num(
                &non_empty,
                "CUSTOS_CLIENT_REQUEST_TIMEOUT_SECS",
                30,
                1,
                600,
            )?),
            key_reload: Duration::from_secs(parse_num(&non_empty, "CUSTOS_KEY_RELOAD_SECS", 30, 1, 3600)?),
            log_filter: non_empty("CUSTOS_LOG").unwrap_or_else(|| "info".into()),
            auth: AuthSettings::from_lookup(&non_empty)?,
            clinical: ClinicalSettings::from_lookup(&non_empty)?,
            ledger: LedgerSettings {
                origin: ledger_origin(non_empty("CUSTOS_LEDGER_ORIGIN"))?,
                checkpoint_mirror: non_empty("CUSTOS_CHECKPOINT_MIRROR").map(PathBuf::from),
                sequencer_in_server: match non_empty("CUSTOS_SEQUENCER").as_deref() {
                    None | Some("on") | Some("true") | Some("1") => true,
                    Some("off") | Some("false") | Some("0") => false,
                    Some(_) => return Err(bad("CUSTOS_SEQUENCER", "must be `on` or `off`")),
                },
                batch_size: parse_num(&non_empty, "CUSTOS_SEQUENCER_BATCH", 2000, 1, 50_000)?,
                batch_interval: Duration::from_millis(parse_num(
                    &non_empty,
                    "CUSTOS_SEQUENCER_INTERVAL_MS",
                    100,
                    1,
                    60_000,
                )?),
                checkpoint_interval: Duration::from_millis(parse_num(
                    &non_empty,
                    "CUSTOS_CHECKPOINT_INTERVAL_MS",
                    1000,
                    10,
                    3_600_000,
                )?),
                next_signing_key: secret("CUSTOS_LEDGER_NEXT_SIGNING_KEY"),
                previous_keys: non_empty("CUSTOS_LEDGER_PREVIOUS_KEYS")
                    .map(|v| v.split(',').map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect())
                    .unwrap_or_default(),
                witnesses: witnesses(non_empty("CUSTOS_WITNESSES"))?,
            },
            metrics: MetricsSettings {
                bind: non_empty("CUSTOS_METRICS_BIND")
                    .map(|v| v.parse())
                    .transpose()
                    .map_err(|_| bad("CUSTOS_METRICS_BIND", "must be an address like 127.0.0.1:9464"))?,
                tenant_labels: match non_empty("CUSTOS_METRICS_TENANT_LABELS").as_deref() {
                    None | Some("off") | Some("false") | Some("0") => false,
                    Some("on") | Some("true") | Some("1") => true,
                    Some(_) => return Err(bad("CUSTOS_METRICS_TENANT_LABELS", "must be `on` or `off`")),
                },
            },
            outbox: OutboxSettings {
                smtp_url: secret("CUSTOS_SMTP_URL"),
                from: non_empty("CUSTOS_SMTP_FROM").unwrap_or_else(|| "Custos <no-reply@localhost>".into()),
                interval: Duration::from_millis(parse_num(
                    &non_empty,
                    "CUSTOS_OUTBOX_INTERVAL_MS",
                    5000,
                    10,
                    3_600_000,
                )?),
                max_attempts: parse_num(&non_empty, "CUSTOS_OUTBOX_MAX_ATTEMPTS", 8, 1, 100)?,
            },
        })
        .and_then(|s: Settings| s.checked())
    }

    fn checked(self) -> Result<Self, ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(bad("CUSTOS_TLS_CERT", "CUSTOS_TLS_CERT and CUSTOS_TLS_KEY must be set together"));
        }
        if self.environment == Environment::Production && self.database_url.is_none() {
            return Err(bad("DATABASE_URL", "required when CUSTOS_ENV=production"));
        }
        Ok(self)
    }
}

/// The origin doubles as the signed-note key name: printable, no spaces, no '+'.
fn ledger_origin(value: Option<String>) -> Result<String, ConfigError> {
    let origin = value.unwrap_or_else(|| "custos.local/ledger".into());
    let ok = origin.len() <= 200 && origin.chars().all(|c| c.is_ascii_graphic() && c != '+');
    if !ok {
        return Err(bad(
            "CUSTOS_LEDGER_ORIGIN",
            "must be printable ASCII without spaces or '+', like example.org/ledger",
        ));
    }
    Ok(origin.trim_end_matches('/').to_owned())
}

/// `CUSTOS_WITNESSES`: `<http(s) URL> <vkey>` pairs separated by commas (keys are checked
/// where they are used, src/audit/witnessing.rs).
fn witnesses(v: Option<String>) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for entry in v.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = entry.split_whitespace();
        let (Some(url), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("CUSTOS_WITNESSES", "each entry must be `<URL> <vkey>`"));
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("CUSTOS_WITNESSES", "witness URLs must start with http:// or https://"));
        }
        out.push((url.to_owned(), key.to_owned()));
    }
    Ok(out)
}

fn bad(var: &'static str, problem: &str) -> ConfigError {
    ConfigError { var, problem: problem.to_owned() }
}

fn parse_num<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match get(var) {
        None => Ok(default),
        Some(v) => match v.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(ConfigError { var, problem: format!("must be a number from {min} to {max}") }),
        },
    }
}

/// Argon2id cost parameters. The defaults are OWASP's minimum (m = 19456 KiB, t = 2, p = 1);
/// [`Argon2Params::new`] refuses anything weaker.
/// Hashing with them is `crate::auth::password`'s.
/// Deliberately not `Deserialize`: build it from configuration with [`Argon2Params::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub(crate) m_cost_kib: u32,
    pub(crate) t_cost: u32,
    pub(crate) p_cost: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self { m_cost_kib: 19_456, t_cost: 2, p_cost: 1 }
    }
}

impl Argon2Params {
    /// Validated parameters; each must be at least the default (OWASP minimum).
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, Argon2ParamsError> {
        let min = Self::default();
        if m_cost_kib < min.m_cost_kib || t_cost < min.t_cost || p_cost < min.p_cost {
            return Err(Argon2ParamsError(format!(
                "below the minimum m={}, t={}, p={}",
                min.m_cost_kib, min.t_cost, min.p_cost
            )));
        }
        argon2::Params::new(m_cost_kib, t_cost, p_cost, None).map_err(|e| Argon2ParamsError(e.to_string()))?;
        Ok(Self { m_cost_kib, t_cost, p_cost })
    }

    /// Unchecked constructor for tests (e.g. cheap or deliberately outdated hashes).
    #[cfg(test)]
    pub(crate) fn unchecked(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Self {
        Self { m_cost_kib, t_cost, p_cost }
    }

    /// Memory cost in KiB.
    pub fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }
    /// Iterations.
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }
    /// Lanes.
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }
}

/// Argon2 parameters outside the allowed range.
#[derive(Debug, thiserror::Error)]
#[error("invalid Argon2 parameters: {0}")]
pub struct Argon2ParamsError(pub String);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s =
            settings(&[("CUSTOS_KEK", "c2VjcmV0LWtlay12YWx1ZQ=="), ("DATABASE_URL", "postgres://u:hunter2@db/custos")])
                .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("c2VjcmV0LWtlay12YWx1ZQ"), "{dbg}");
    }

    #[test]
    fn defaults_and_validation() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.environment, Environment::Development);
        assert!(settings(&[("CUSTOS_BIND", "nowhere")]).is_err());
        assert!(settings(&[("CUSTOS_ENV", "staging")]).is_err());
        assert!(settings(&[("CUSTOS_DB_MAX_CONNECTIONS", "0")]).is_err());
        assert!(settings(&[("CUSTOS_TLS_CERT", "/x.pem")]).is_err());
        let err = settings(&[("CUSTOS_ENV", "production")]).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        let cors = settings(&[("CUSTOS_CORS_ORIGINS", "https://a.example, https://b.example")]).unwrap();
        assert_eq!(cors.cors_origins, vec!["https://a.example", "https://b.example"]);
        assert_eq!(s.ledger.origin, "custos.local/ledger");
        assert!(settings(&[("CUSTOS_LEDGER_ORIGIN", "a b")]).is_err());
        assert!(settings(&[("CUSTOS_LEDGER_ORIGIN", "a+b")]).is_err());
        assert!(settings(&[("CUSTOS_SEQUENCER", "maybe")]).is_err());
        let l = settings(&[("CUSTOS_LEDGER_ORIGIN", "h.example/log/"), ("CUSTOS_SEQUENCER", "off")]).unwrap().ledger;
        assert_eq!(l.origin, "h.example/log");
        assert!(!l.sequencer_in_server);
    }

    #[test]
    fn auth_defaults_and_bounds() {
        let a = settings(&[]).unwrap().auth;
        assert_eq!(a.idle_timeout, Duration::from_secs(900));
        assert_eq!(a.absolute_lifetime, Duration::from_secs(12 * 3600));
        assert_eq!(a.access_token_ttl, Duration::from_secs(600));
        assert_eq!((a.lockout_threshold, a.lockout_duration), (5, Duration::from_secs(900)));
        assert_eq!(a.rate_per_minute, 60);
        assert_eq!(a.argon2, Argon2Params::default());
        assert!(a.hash_concurrency >= 1);
        // Access tokens live 5 to 15 minutes; Argon2 never below OWASP's minimum.
        assert!(settings(&[("CUSTOS_ACCESS_TOKEN_TTL_SECS", "60")]).is_err());
        assert!(settings(&[("CUSTOS_ACCESS_TOKEN_TTL_SECS", "3600")]).is_err());
        assert!(settings(&[("CUSTOS_ARGON2_M_KIB", "4096")]).is_err());
        assert_eq!(settings(&[("CUSTOS_ARGON2_T", "3")]).unwrap().auth.argon2.t_cost(), 3);
        let err =
            settings(&[("CUSTOS_SESSION_IDLE_TIMEOUT_SECS", "3600"), ("CUSTOS_SESSION_ABSOLUTE_TIMEOUT_SECS", "600")]);
        assert!(err.is_err());
    }
}
