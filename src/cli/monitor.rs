//! `custos monitor [--once]` and `custos demo simulate`: thin wrappers over
//! `monitoring::engine` and `demo::simulate`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::CliError;
use crate::audit::sequencer::Leader as Sequencer;
use crate::audit::signing::LedgerSigner;
use crate::config::Settings;
use crate::crypto::Kek;
use crate::keys::RootKeys;
use crate::monitoring::config::Thresholds;
use crate::monitoring::engine::{Leader, PassReport};

/// Runs the privacy monitor (leader election by advisory lock); `once` analyzes every ledger
/// to its current end and exits.
pub async fn monitor(settings: &Settings, once: bool, interval_secs: u64) -> Result<(), CliError> {
    let th = Thresholds::from_env().map_err(|e| CliError::Usage(e.to_string()))?;
    let keys = RootKeys::load(settings)?;
    // Only `custos migrate` changes the schema; the monitor refuses a stale one.
    let pool = super::checked_pool(settings).await?;
    let crypto = crate::crypto::store::load(&pool, &Kek::from_bytes(*keys.kek.expose()))
        .await
        .map_err(|e| CliError::Runtime(anyhow::Error::from(e).context("loading data keys")))?;
    let opts = (*pool.connect_options()).clone();
    pool.close().await;
    if !once {
        tracing::info!("privacy monitor candidate starting");
        let every = Duration::from_secs(interval_secs.max(1));
        crate::monitoring::engine::run_candidate(opts, Arc::new(crypto), th, every).await;
        return Ok(());
    }
    let Some(mut leader) = Leader::try_acquire(&opts).await.map_err(anyhow::Error::from)? else {
        return Err(CliError::Runtime(anyhow::anyhow!("another privacy monitor is leading; nothing done")));
    };
    let started = std::time::Instant::now();
    let r = leader.run_pass(&crypto, &th).await.map_err(anyhow::Error::from)?;
    leader.release().await;
    print_report(&r, started.elapsed());
    Ok(())
}

fn print_report(r: &PassReport, took: Duration) {
    let rate = r.entries as f64 / took.as_secs_f64().max(1e-9);
    println!(
        "analyzed {} ledger entries ({} accesses, {} explained) in {:.2} s ({rate:.0} entries/s); {} findings",
        r.entries,
        r.accesses,
        r.explained,
        took.as_secs_f64(),
        r.findings
    );
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Seed: the same seed simulates the same organization and traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write labels.json (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Weeks of ordinary traffic.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(4..=52))]
    pub weeks: u32,
    /// Clinicians (patients are added in proportion, 50 per clinician).
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u32).range(48..=5000))]
    pub clinicians: u32,
}

/// `custos demo simulate`: builds the organization, writes its traffic into the ledger (and
/// integrates it), writes the labels.
pub async fn simulate(settings: &Settings, args: SimulateArgs) -> Result<(), CliError> {
    let keys = RootKeys::load(settings)?;
    let pool = super::pool(settings).await?;
    crate::db::migrate::run(&pool).await.map_err(anyhow::Error::from)?;
    let opts = crate::demo::simulate::Options {
        seed: args.seed,
        weeks: args.weeks,
        clinicians: args.clinicians,
        out: args.out.clone(),
    };
    let sim = crate::demo::simulate::run(&pool, &keys, &opts).await?;
    let signer = LedgerSigner::from_settings(settings, &keys).map_err(|e| CliError::Usage(e.to_string()))?;
    let conn_opts = (*pool.connect_options()).clone();
    let Some(mut seq) = Sequencer::try_acquire(&conn_opts).await.map_err(anyhow::Error::from)? else {
        return Err(CliError::Runtime(anyhow::anyhow!(
            "the events are in the inbox; a running sequencer will integrate them"
        )));
    };
    let n = seq.drain(&signer, &settings.ledger).await.map_err(anyhow::Error::from)?;
    seq.release().await;
    println!("organization: {} ({})", sim.org_name, sim.org_id);
    println!("admin:        {} (one-time password: {})", sim.admin_email, sim.admin_one_time_password);
    println!("events:       {} written, {n} integrated into the ledger", sim.events);
    println!("labels:       {} injected cases in {}", sim.labels, args.out.join("labels.json").display());
    println!("next:         custos monitor --once");
    Ok(())
}
