//! `custos logins`: the production database logins, one per job, each with only the group
//! role(s) its commands need. Run once per installation by a database administrator (a
//! superuser or a `CREATEROLE` login); every Custos command afterwards runs as one of these,
//! never as a superuser (docs/operations.md, "Logins").
//!
//! | login            | runs                          | member of                                   |
//! |------------------|-------------------------------|---------------------------------------------|
//! | `<prefix>owner`  | `custos migrate`              | the NOLOGIN owners of functions and ledger tables (INHERIT: it re-applies their policies) |
//! | `<prefix>web`    | `custos serve`                | `custos_app` (NOINHERIT)                    |
//! | `<prefix>ledger` | `custos sequencer`            | `custos_sequencer` (NOINHERIT)              |
//! | `<prefix>maint`  | `bootstrap`, `import`, `keys` | `custos_app`, `custos_rewrapper` (NOINHERIT) |
//! | `<prefix>verify` | `verify`, `export`            | `custos_auditor`, `custos_app` (NOINHERIT; the app role records the export) |
//!
//! NOINHERIT logins hold no privilege of their own: every statement runs after a
//! transaction-local `SET ROLE`, so an injected `RESET ROLE` leads nowhere. Only the owner
//! changes the schema; the others read the schema version (granted to PUBLIC by
//! policies/90_logins.sql) and refuse a database that is behind them.

use rand::RngExt;

use super::CliError;

/// One login: its job, its name suffix, whether it inherits, its group roles.
pub struct Login {
    pub job: &'static str,
    pub suffix: &'static str,
    pub inherit: bool,
    pub groups: &'static [&'static str],
}

/// Every production login.
pub const LOGINS: &[Login] = &[
    Login {
        job: "migrate",
        suffix: "owner",
        inherit: true,
        groups: &[
            "custos_ledger_owner",
            "custos_access_check",
            "custos_auth_lookup",
            "custos_invite_redeemer",
            // Owns custos.rewrap_progress() (policies/85_console.sql).
            "custos_rewrapper",
        ],
    },
    Login { job: "serve", suffix: "web", inherit: false, groups: &["custos_app"] },
    Login { job: "sequencer", suffix: "ledger", inherit: false, groups: &["custos_sequencer"] },
    Login {
        job: "bootstrap, import, keys",
        suffix: "maint",
        inherit: false,
        groups: &["custos_app", "custos_rewrapper"],
    },
    Login { job: "verify, export", suffix: "verify", inherit: false, groups: &["custos_auditor", "custos_app"] },
    // The privacy monitor: `custos_monitor` for the engine's reads and writes, `custos_app`
    // for loading the data keys (blind indexes of the sealed names and addresses).
    Login { job: "monitor", suffix: "watch", inherit: false, groups: &["custos_monitor", "custos_app"] },
];

/// A login name prefix: lower-case letters, digits and `_`, starting with a letter.
pub fn check_prefix(prefix: &str) -> Result<(), CliError> {
    let ok = prefix.len() <= 40
        && prefix.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(()) } else { Err(CliError::Usage("--prefix: lower-case letters, digits and _, at most 40".into())) }
}

/// A database name for `ALTER DATABASE … OWNER`: the same alphabet as prefixes.
fn check_database(name: &str) -> Result<(), CliError> {
    let ok = name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(()) } else { Err(CliError::Usage("--database: lower-case letters, digits and _, at most 63".into())) }
}

/// The statements `custos logins create` runs, in order (also printed by `custos logins sql`).
/// Names are checked identifiers; passwords (if any) are alphanumeric, generated here.
pub fn statements(prefix: &str, database: Option<&str>, passwords: &[(String, String)]) -> Vec<String> {
    let mut out = vec![crate::db::migrate::POLICY_FILES[0].1.to_owned()];
    for l in LOGINS {
        let name = format!("{prefix}{}", l.suffix);
        let inherit = if l.inherit { "INHERIT" } else { "NOINHERIT" };
        let attrs = format!("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION {inherit}");
        out.push(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN \
             CREATE ROLE {name} {attrs}; END IF; END $$"
        ));
        out.push(format!("ALTER ROLE {name} {attrs}"));
        out.push(format!("GRANT {} TO {name}", l.groups.join(", ")));
        if let Some((_, pw)) = passwords.iter().find(|(n, _)| *n == name) {
            out.push(format!("ALTER ROLE {name} PASSWORD '{pw}'"));
        }
    }
    if let Some(db) = database {
        out.push(format!("ALTER DATABASE {db} OWNER TO {prefix}owner"));
    }
    out
}

/// `custos logins sql`: the statements, for review or psql.
pub fn print_sql(prefix: &str, database: Option<&str>) -> Result<(), CliError> {
    check_prefix(prefix)?;
    if let Some(db) = database {
        check_database(db)?;
    }
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for s in statements(prefix, database, &[]) {
        match writeln!(out, "{};", s.trim_end().trim_end_matches(';')) {
            Ok(()) => {}
            // `custos logins sql | head`: the reader has seen enough.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(CliError::Runtime(e.into())),
        }
    }
    Ok(())
}

/// `custos logins create`: creates (or brings up to date) every login, hands `database` to the
/// owner login, and sets passwords: `CUSTOS_LOGIN_PASSWORD_<SUFFIX>` (e.g.
/// `CUSTOS_LOGIN_PASSWORD_WEB`) where set, else with `generate_passwords` a fresh random one
/// printed once on stdout; otherwise passwords are left as they are.
pub async fn create(
    pool: &sqlx::PgPool,
    prefix: &str,
    database: Option<&str>,
    generate_passwords: bool,
) -> Result<(), CliError> {
    check_prefix(prefix)?;
    if let Some(db) = database {
        check_database(db)?;
    }
    let passwords: Vec<(String, String)> = if generate_passwords {
        LOGINS.iter().map(|l| (format!("{prefix}{}", l.suffix), password())).collect()
    } else {
        Vec::new()
    };
    let from_env: Vec<(String, secrecy::SecretString)> = LOGINS
        .iter()
        .filter_map(|l| {
            let var = format!("CUSTOS_LOGIN_PASSWORD_{}", l.suffix.to_ascii_uppercase());
            let pw = std::env::var(var).ok().filter(|v| !v.is_empty())?;
            Some((format!("{prefix}{}", l.suffix), secrecy::SecretString::from(pw)))
        })
        .collect();
    let failed = |e: sqlx::Error| {
        CliError::Runtime(anyhow::anyhow!("creating the logins (needs a superuser or CREATEROLE login): {e}"))
    };
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    for s in statements(prefix, database, &passwords) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s)).execute(&mut *tx).await.map_err(failed)?;
    }
    for (name, pw) in &from_env {
        // Any characters: the server quotes the literal (format %L), nothing is spliced here.
        let stmt: String = sqlx::query_scalar("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)")
            .bind(name)
            .bind(secrecy::ExposeSecret::expose_secret(pw))
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt)).execute(&mut *tx).await.map_err(failed)?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    for l in LOGINS {
        let name = format!("{prefix}{}", l.suffix);
        match passwords.iter().find(|(n, _)| *n == name) {
            Some((_, pw)) if !from_env.iter().any(|(n, _)| *n == name) => println!("{name}\t{pw}\t# {}", l.job),
            _ => println!("{name}\t# {}", l.job),
        }
    }
    Ok(())
}

/// 32 alphanumeric characters (≈190 bits): safe inside a SQL string literal as generated.
fn password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..32).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plain_identifiers() {
        assert!(check_prefix("custos_").is_ok());
        assert!(check_prefix("t1_ab").is_ok());
        for bad in ["", "Custos", "1x", "a;drop", "a-b", "a b", "a'b"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_alphanumeric() {
        let p = password();
        assert_eq!(p.len(), 32);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
