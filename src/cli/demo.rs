//! `custos demo generate`: write a synthetic legacy export (see `crate::demo`).

use std::path::PathBuf;

use super::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum DemoCommand {
    /// Write a deterministic synthetic MongoDB export for `custos import mongo`.
    Generate(GenerateArgs),
    /// Build an organization with weeks of access traffic and labelled snooping cases for
    /// every privacy-monitoring detector (docs/privacy-monitoring.md).
    Simulate(super::monitor::SimulateArgs),
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Number of patients (doctors and admins are added in proportion).
    #[arg(long)]
    pub patients: u64,
    /// Seed: the same seed writes the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Share of documents to break on purpose (0 to 1), for testing the import's rejects.
    #[arg(long, default_value_t = 0.0)]
    pub broken_share: f64,
}

pub fn run(args: GenerateArgs) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&args.broken_share) {
        return Err(CliError::Usage("--broken-share must be between 0 and 1".into()));
    }
    let opts = crate::demo::Options {
        patients: args.patients,
        seed: args.seed,
        out: args.out,
        broken_share: args.broken_share,
    };
    let m = crate::demo::generate(&opts)?;
    for (name, n) in &m.documents {
        println!("{name}.json: {n} documents");
    }
    println!("broken documents (expected rejects): {}", m.expected_rejects.len());
    println!("written to {}", opts.out.display());
    Ok(())
}
