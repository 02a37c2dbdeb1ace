//! `custos sequencer`, `custos verify` and `custos export`: thin wrappers over `audit::*`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use uuid::Uuid;

use crate::audit::checkpoint::NoteVerifier;
use crate::audit::cosignature::CosignatureVerifier;
use crate::audit::offline::verify_bundle;
use crate::audit::sequencer::{self, Leader};
use crate::audit::signing::{LedgerSigner, SYSTEM_LEDGER};
use crate::audit::tlog_proof::TlogProof;
use crate::audit::{Action, AuditContext, AuditEvent, Outcome};
use crate::cli::CliError;
use crate::config::Settings;
use crate::db::Claims;
use crate::keys::RootKeys;

/// Runs the sequencer alone (as leader when it can get the lock); `once` drains the inbox,
/// signs, and exits.
pub async fn sequencer(settings: &Settings, once: bool, no_migrate: bool) -> Result<(), CliError> {
    let keys = RootKeys::load(settings)?;
    let signer = LedgerSigner::from_settings(settings, &keys).map_err(|e| CliError::Usage(e.to_string()))?;
    let pool = if no_migrate {
        super::checked_pool(settings).await?
    } else {
        let pool = super::pool(settings).await?;
        crate::db::migrate::run_startup(&pool).await.map_err(anyhow::Error::from)?;
        pool
    };
    let opts = (*pool.connect_options()).clone();
    pool.close().await;
    if !once {
        super::start_metrics(settings, None)?;
        tracing::info!(origin = %settings.ledger.origin, "audit sequencer candidate starting");
        sequencer::run_candidate(opts, signer, settings.ledger.clone()).await;
        return Ok(());
    }
    let Some(mut leader) = Leader::try_acquire(&opts).await.map_err(anyhow::Error::from)? else {
        return Err(CliError::Runtime(anyhow::anyhow!("another sequencer is leading; nothing done")));
    };
    let n = leader.drain(&signer, &settings.ledger).await.map_err(anyhow::Error::from)?;
    leader.release().await;
    println!("integrated {n} events");
    Ok(())
}

/// Verifier keys: the installation's own (online only) plus `--key` values, each either a
/// `name+id+key` string or a file holding one per line.
fn parse_keys(args: &[String]) -> Result<Vec<NoteVerifier>, CliError> {
    let mut out = Vec::new();
    for arg in args {
        let text = if NoteVerifier::parse(arg.trim()).is_ok() {
            arg.clone()
        } else {
            std::fs::read_to_string(arg).map_err(|e| CliError::Usage(format!("--key {arg}: not a key, and {e}")))?
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            out.push(NoteVerifier::parse(line).map_err(|e| CliError::Usage(format!("--key {arg}: {e}")))?);
        }
    }
    Ok(out)
}

fn read_notes(paths: &[PathBuf]) -> Result<Vec<String>, CliError> {
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).map_err(|e| CliError::Usage(format!("--checkpoint {}: {e}", p.display()))))
        .collect()
}

/// `--witness` keys and `--min-cosignatures` of `custos verify`.
#[derive(Debug, Clone, Default)]
pub struct Cosigned {
    pub witnesses: Vec<CosignatureVerifier>,
    pub required: usize,
}

impl Cosigned {
    pub fn parse(keys: &[String], required: usize) -> Result<Self, CliError> {
        let witnesses = keys
            .iter()
            .map(|k| CosignatureVerifier::parse(k).map_err(|e| CliError::Usage(format!("--witness {k}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if required > witnesses.len() {
            return Err(CliError::Usage(format!(
                "--min-cosignatures {required} needs at least that many --witness keys"
            )));
        }
        Ok(Self { witnesses, required })
    }
}

/// `custos verify`: online over every ledger, or offline over a bundle. Exit 1 on any finding.
pub async fn verify(
    settings: &Settings,
    bundle: Option<PathBuf>,
    key_args: &[String],
    checkpoints: &[PathBuf],
    cosigned: &Cosigned,
) -> Result<(), CliError> {
    let mut keys = parse_keys(key_args)?;
    let external = read_notes(checkpoints)?;
    if let Some(path) = bundle {
        if cosigned.required > 0 {
            // Bundles carry the checkpoints as signed by the log, without cosignatures.
            return Err(CliError::Usage("--min-cosignatures applies to the database, not to --bundle".into()));
        }
        return verify_offline(&path, (!keys.is_empty()).then_some(&keys[..]), &external);
    }
    // With --key the auditor trusts exactly the published keys it was given and needs none of
    // the installation's secrets; without, the installation's own verifier keys (derived
    // from CUSTOS_LEDGER_SIGNING_KEY and its rotation settings) are used.
    if keys.is_empty() {
        let root_keys = RootKeys::load(settings)?;
        let signer = LedgerSigner::from_settings(settings, &root_keys).map_err(|e| CliError::Usage(e.to_string()))?;
        keys.extend(signer.verifiers());
    }
    let mut external = external;
    if let Some(dir) = &settings.ledger.checkpoint_mirror {
        external.extend(mirror_latest(dir));
    }
    let pool = super::checked_pool(settings).await?;
    let mut conn = pool.acquire().await.map_err(anyhow::Error::from)?.detach();
    // Read as the read-only auditor role: verification cannot change what it checks.
    sqlx::query("SET ROLE custos_auditor").execute(&mut conn).await.map_err(anyhow::Error::from)?;
    let reports = crate::audit::verify::verify_all(&mut conn, &keys, &settings.ledger.origin, &external)
        .await
        .map_err(anyhow::Error::from)?;
    let findings = crate::audit::witnessing::check(&mut conn, &cosigned.witnesses, cosigned.required)
        .await
        .map_err(anyhow::Error::from)?;
    for f in &findings {
        println!("FAILED: {f}");
    }
    let mut bad = 0;
    for r in &reports {
        match &r.finding {
            None => println!("ledger {}: ok ({} entries, {} checkpoints)", r.ledger_id, r.size, r.checkpoints),
            Some(f) => {
                bad += 1;
                println!("ledger {}: FAILED at {f}", r.ledger_id);
            }
        }
    }
    if bad > 0 {
        return Err(CliError::Runtime(anyhow::anyhow!("{bad} of {} ledgers failed verification", reports.len())));
    }
    if !findings.is_empty() {
        return Err(CliError::Runtime(anyhow::anyhow!("{} witness finding(s)", findings.len())));
    }
    if cosigned.required > 0 {
        println!("every latest checkpoint has at least {} witness cosignature(s)", cosigned.required);
    }
    println!("all {} ledgers verified", reports.len());
    Ok(())
}

/// `custos verify --proof FILE… --key KEY…`: each tlog-proof file offline, against the given
/// log keys only (and `--witness` / `--min-cosignatures`). Exit 1 if any fails.
pub fn verify_proofs(files: &[PathBuf], key_args: &[String], cosigned: &Cosigned) -> Result<(), CliError> {
    let keys = parse_keys(key_args)?;
    if keys.is_empty() {
        return Err(CliError::Usage("--proof needs the log's verifier key(s) with --key".into()));
    }
    let mut bad = 0;
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| CliError::Usage(format!("--proof {}: {e}", f.display())))?;
        let checked = TlogProof::parse(&text).and_then(|p| {
            let cp = p.verify(&keys, &cosigned.witnesses, cosigned.required)?;
            Ok((p, cp))
        });
        match checked {
            Ok((p, cp)) => {
                println!(
                    "{}: ok, entry {} of {} in {} ({} bytes)",
                    f.display(),
                    p.index,
                    cp.size,
                    cp.origin,
                    p.extra.as_ref().map_or(0, Vec::len)
                );
                if let Some(text) = p.extra.as_deref().and_then(|e| std::str::from_utf8(e).ok()) {
                    println!("event: {text}");
                }
            }
            Err(e) => {
                bad += 1;
                println!("{}: FAILED: {e}", f.display());
            }
        }
    }
    if bad > 0 {
        return Err(CliError::Runtime(anyhow::anyhow!("{bad} of {} proofs failed verification", files.len())));
    }
    Ok(())
}

/// The latest mirrored checkpoint of every ledger (unreadable entries are skipped).
fn mirror_latest(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().filter_map(|e| std::fs::read_to_string(e.path().join("latest.checkpoint")).ok()).collect()
}

fn verify_offline(path: &Path, keys: Option<&[NoteVerifier]>, external: &[String]) -> Result<(), CliError> {
    let file = std::fs::File::open(path).map_err(|e| CliError::Usage(format!("--bundle {}: {e}", path.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let report = verify_bundle(reader, keys, external, |n| {
        if tty {
            let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
            eprint!("\rverified {n} entries ({rate:.0}/s, bundle {:.1} MB)   ", total as f64 / 1e6);
        }
    })
    .map_err(anyhow::Error::from)?;
    if tty {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    println!("ledger {}: {} entries, {} checkpoints", report.ledger_id, report.size, report.checkpoints);
    println!("root {}", B64.encode(report.root));
    println!("verified in {secs:.3} s ({:.0} entries/s)", report.size as f64 / secs.max(1e-9));
    if report.keys_from_bundle {
        println!("note: no --key given; signatures were checked with the bundle's own keys (pin the publisher's key)");
    }
    match report.finding {
        None => {
            println!("ok");
            Ok(())
        }
        Some(f) => {
            println!("FAILED at {f}");
            Err(CliError::Runtime(anyhow::anyhow!("bundle failed verification")))
        }
    }
}

/// `custos export --ledger ORG --out FILE`: the ledger's bundle up to its latest checkpoint;
/// the export is itself recorded in the ledger.
pub async fn export(settings: &Settings, ledger: &str, out: &Path) -> Result<(), CliError> {
    let ledger_id = match ledger {
        "system" => SYSTEM_LEDGER,
        s => s.parse::<Uuid>().map_err(|_| CliError::Usage("--ledger: an organization id or `system`".into()))?,
    };
    let keys = RootKeys::load(settings)?;
    let signer = LedgerSigner::from_settings(settings, &keys).map_err(|e| CliError::Usage(e.to_string()))?;
    let pool = super::checked_pool(settings).await?;
    let file = std::fs::File::create(out).map_err(|e| CliError::Usage(format!("--out {}: {e}", out.display())))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut conn = pool.acquire().await.map_err(anyhow::Error::from)?.detach();
    sqlx::query("SET ROLE custos_auditor").execute(&mut conn).await.map_err(anyhow::Error::from)?;
    let summary =
        crate::audit::bundle::export(&mut conn, ledger_id, &settings.ledger.origin, &signer.verifiers(), &mut w)
            .await
            .map_err(anyhow::Error::from)?;
    drop(conn);
    let org = (ledger_id != SYSTEM_LEDGER).then_some(ledger_id);
    let claims = Claims::system(org);
    let mut tx = crate::db::begin(&pool, &claims).await.map_err(anyhow::Error::from)?;
    let event = AuditEvent::new(Action::Export, "audit_ledger", Outcome::Success)
        .resource(ledger_id)
        .resource(format!("size={}", summary.size));
    crate::audit::record(&mut tx, &AuditContext::from_claims(&claims), &event).await.map_err(anyhow::Error::from)?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    println!(
        "exported ledger {} ({} entries, {} checkpoints) to {}",
        summary.ledger_id,
        summary.size,
        summary.checkpoints,
        out.display()
    );
    Ok(())
}
