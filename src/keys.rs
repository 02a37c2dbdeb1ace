//! The three root secrets: the key-encryption key (KEK), the JWT signing key and the ledger
//! checkpoint signing key. Each is 32 bytes, base64 in the environment.
//!
//! In development, missing keys are generated once into `<data_dir>/dev-keys` (mode 0600) and
//! reused, with a loud warning; `CUSTOS_ENV=production` refuses to start without real keys.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::config::{Environment, Settings};

/// 32 bytes of key material, wiped on drop and never printed.
#[derive(Clone)]
pub struct KeyBytes(Zeroizing<[u8; 32]>);

impl KeyBytes {
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rng().fill(&mut k[..]);
        Self(k)
    }

    fn from_b64(var: &'static str, value: &SecretString) -> Result<Self, KeyError> {
        let raw = Zeroizing::new(
            B64.decode(value.expose_secret().trim())
                .map_err(|_| KeyError::Invalid { var, problem: "is not valid base64" })?,
        );
        let arr: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Invalid { var, problem: "must decode to exactly 32 bytes" })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    fn to_b64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.expose()))
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes([REDACTED])")
    }
}

/// The decoded root keys.
#[derive(Debug, Clone)]
pub struct RootKeys {
    pub kek: KeyBytes,
    pub jwt_signing: KeyBytes,
    pub ledger_signing: KeyBytes,
    /// True when any key came from the generated development file.
    pub development: bool,
}

/// Why the keys could not be loaded. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A variable is set but unusable.
    #[error("{var} {problem}")]
    Invalid { var: &'static str, problem: &'static str },
    /// Production mode without a required key.
    #[error("{0} is required when CUSTOS_ENV=production (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")]
    MissingInProduction(&'static str),
    /// The development key file could not be read or written.
    #[error("development key file {path}: {source}")]
    DevFile { path: String, source: std::io::Error },
}

const VARS: [&str; 3] = ["CUSTOS_KEK", "CUSTOS_JWT_SIGNING_KEY", "CUSTOS_LEDGER_SIGNING_KEY"];

impl RootKeys {
    /// Loads keys from the settings, falling back to (and creating) the development key file.
    pub fn load(settings: &Settings) -> Result<Self, KeyError> {
        let given = [&settings.kek, &settings.jwt_signing_key, &settings.ledger_signing_key];
        let mut keys: Vec<Option<KeyBytes>> = Vec::with_capacity(3);
        for (var, value) in VARS.iter().zip(given) {
            keys.push(value.as_ref().map(|v| KeyBytes::from_b64(var, v)).transpose()?);
        }
        let mut development = false;
        if keys.iter().any(Option::is_none) {
            if settings.environment == Environment::Production {
                let missing = VARS.iter().zip(&keys).find(|(_, k)| k.is_none()).map_or(VARS[0], |(v, _)| *v);
                return Err(KeyError::MissingInProduction(missing));
            }
            let file = load_or_create_dev_file(&settings.data_dir.join("dev-keys"))?;
            for (slot, dev) in keys.iter_mut().zip(file) {
                if slot.is_none() {
                    *slot = Some(dev);
                    development = true;
                }
            }
            tracing::warn!(
                path = %settings.data_dir.join("dev-keys").display(),
                "using DEVELOPMENT keys generated on this machine: not for production, set CUSTOS_KEK, CUSTOS_JWT_SIGNING_KEY and CUSTOS_LEDGER_SIGNING_KEY"
            );
        }
        // One secret in two roles would let a leak of either (or a confusion between them)
        // break both: production refuses it.
        if settings.environment == Environment::Production {
            for i in 0..keys.len() {
                for j in i + 1..keys.len() {
                    if let (Some(a), Some(b)) = (&keys[i], &keys[j])
                        && a.expose() == b.expose()
                    {
                        return Err(KeyError::Invalid {
                            var: VARS[j],
                            problem: "must differ from the other root keys",
                        });
                    }
                }
            }
        }
        let mut it = keys.into_iter().flatten();
        match (it.next(), it.next(), it.next()) {
            (Some(kek), Some(jwt_signing), Some(ledger_signing)) => {
                Ok(Self { kek, jwt_signing, ledger_signing, development })
            }
            _ => Err(KeyError::Invalid { var: "CUSTOS_KEK", problem: "could not be loaded" }),
        }
    }

    /// Fresh random keys (tests, and `custos` commands that need throw-away keys).
    pub fn random() -> Self {
        Self {
            kek: KeyBytes::random(),
            jwt_signing: KeyBytes::random(),
            ledger_signing: KeyBytes::random(),
            development: true,
        }
    }
}

/// Reads `VAR=base64` lines; creates the file with three fresh keys (0600) when missing.
fn load_or_create_dev_file(path: &Path) -> Result<[KeyBytes; 3], KeyError> {
    let io = |source| KeyError::DevFile { path: path.display().to_string(), source };
    if !path.exists() {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let fresh = [KeyBytes::random(), KeyBytes::random(), KeyBytes::random()];
        let mut text =
            Zeroizing::new(String::from("# Custos DEVELOPMENT keys, generated locally. NOT FOR PRODUCTION.\n"));
        for (var, key) in VARS.iter().zip(&fresh) {
            text.push_str(&format!("{var}={}\n", key.to_b64().as_str()));
        }
        write_private(path, text.as_bytes()).map_err(io)?;
        return Ok(fresh);
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
    let mut found: [Option<KeyBytes>; 3] = [None, None, None];
    for line in text.lines() {
        if let Some((var, value)) = line.split_once('=')
            && let Some(i) = VARS.iter().position(|v| *v == var.trim())
        {
            found[i] = Some(KeyBytes::from_b64(VARS[i], &SecretString::from(value.trim().to_owned()))?);
        }
    }
    match found {
        [Some(a), Some(b), Some(c)] => Ok([a, b, c]),
        _ => Err(KeyError::DevFile {
            path: path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "missing a key line; delete the file to regenerate",
            ),
        }),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, pairs: &[(&str, &str)]) -> Settings {
        let mut map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("CUSTOS_DATA_DIR".into(), dir.display().to_string());
        Settings::from_lookup(|k| map.get(k).cloned()).unwrap()
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("custos-keys-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn dev_keys_are_generated_once_with_mode_0600_and_reused() {
        let dir = tempdir();
        let a = RootKeys::load(&settings(&dir, &[])).unwrap();
        let b = RootKeys::load(&settings(&dir, &[])).unwrap();
        assert!(a.development);
        assert_eq!(a.kek.expose(), b.kek.expose());
        assert_ne!(a.kek.expose(), a.jwt_signing.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("dev-keys")).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(!format!("{a:?}").contains(&B64.encode(a.kek.expose())));
    }

    #[test]
    fn production_refuses_missing_keys_and_accepts_real_ones() {
        let dir = tempdir();
        let prod = [("CUSTOS_ENV", "production"), ("DATABASE_URL", "postgres://x/y")];
        let err = RootKeys::load(&settings(&dir, &prod)).unwrap_err();
        assert!(matches!(err, KeyError::MissingInProduction("CUSTOS_KEK")));
        assert!(!dir.join("dev-keys").exists(), "production must not generate keys");
        let (k, j, l) = (B64.encode([7u8; 32]), B64.encode([8u8; 32]), B64.encode([9u8; 32]));
        let full =
            [prod[0], prod[1], ("CUSTOS_KEK", &k), ("CUSTOS_JWT_SIGNING_KEY", &j), ("CUSTOS_LEDGER_SIGNING_KEY", &l)];
        let keys = RootKeys::load(&settings(&dir, &full)).unwrap();
        assert!(!keys.development);
        // One secret in two roles is refused in production.
        let same =
            [prod[0], prod[1], ("CUSTOS_KEK", &k), ("CUSTOS_JWT_SIGNING_KEY", &j), ("CUSTOS_LEDGER_SIGNING_KEY", &k)];
        let err = RootKeys::load(&settings(&dir, &same)).unwrap_err();
        assert!(matches!(err, KeyError::Invalid { var: "CUSTOS_LEDGER_SIGNING_KEY", .. }), "{err}");
        let short = [("CUSTOS_KEK", "AAAA")];
        assert!(matches!(RootKeys::load(&settings(&dir, &short)), Err(KeyError::Invalid { var: "CUSTOS_KEK", .. })));
    }
}
