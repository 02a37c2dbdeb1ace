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
    pub log_filter: String,
    /// Audit ledger settings (sequencer, checkpoints).
    pub ledger: LedgerSettings,
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
            log_filter: non_empty("CUSTOS_LOG").unwrap_or_else(|| "info".into()),
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
}
