//! Ledger benchmarks. One command each (release build; PostgreSQL from
//! CUSTOS_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres):
//!
//!   cargo bench --bench ledger -- sequencer [events=200000] [writers=32]
//!   cargo bench --bench ledger -- verify    [events=1000000]
//!   cargo bench --bench ledger -- proofs    [entries=10000000] [queries=2000]
//!   cargo bench --bench ledger -- console_events [events=1000000] [pages=400]
//!
//! Each prints its figure next to a baseline measured in the same run (see bench/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod console_events;
mod proofs;
mod sequencer;
mod verify;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let num = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match args.first().map(String::as_str) {
        Some("sequencer") => rt.block_on(sequencer::run(num(1, 200_000), num(2, 32) as usize)),
        Some("verify") => verify::run(num(1, 1_000_000)),
        Some("console_events") => rt.block_on(console_events::run(num(1, 1_000_000), num(2, 400) as usize)),
        Some("proofs") => rt.block_on(proofs::run(num(1, 10_000_000), num(2, 2000) as usize)),
        _ => eprintln!("usage: cargo bench --bench ledger -- sequencer|verify|proofs|console_events [n]"),
    }
}
