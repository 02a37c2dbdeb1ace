//! `custos sequencer`, `custos verify` and `custos export`: thin wrappers over `audit::*`.

use crate::audit::sequencer::{self, Leader};
use crate::audit::signing::LedgerSigner;
use crate::cli::CliError;
use crate::config::Settings;
use crate::keys::RootKeys;

/// Runs the sequencer alone (as leader when it can get the lock); `once` drains the inbox,
/// signs, and exits.
pub async fn sequencer(settings: &Settings, once: bool) -> Result<(), CliError> {
    let keys = RootKeys::load(settings)?;
    let signer = LedgerSigner::new(&settings.ledger.origin, &keys).map_err(|e| CliError::Usage(e.to_string()))?;
    let pool = super::pool(settings).await?;
    crate::db::migrate::run(&pool).await.map_err(anyhow::Error::from)?;
    let opts = (*pool.connect_options()).clone();
    pool.close().await;
    if !once {
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
