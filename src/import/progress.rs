//! Progress: an `indicatif` bar per collection on a terminal, plain lines otherwise (at most
//! one every two seconds, plus one at the end), always on stderr so `--json` stays clean.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    name: &'static str,
    total: u64,
    bar: Option<ProgressBar>,
    last: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(name: &'static str, total_bytes: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total_bytes);
            if let Ok(style) = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {percent:>3}% {msg} ({elapsed})") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(name);
            bar
        });
        Self { name, total: total_bytes, bar, last: Instant::now(), quiet }
    }

    pub fn update(&mut self, bytes: u64, counts: Counts) {
        let msg = counts.to_string();
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.set_message(msg);
        } else if !self.quiet && self.last.elapsed() >= Duration::from_secs(2) {
            self.last = Instant::now();
            eprintln!("import {}: {}% ({msg})", self.name, percent(bytes, self.total));
        }
    }

    pub fn finish(self, counts: Counts) {
        let msg = counts.to_string();
        match self.bar {
            Some(bar) => bar.finish_with_message(msg),
            None if !self.quiet => eprintln!("import {}: done ({msg})", self.name),
            None => {}
        }
    }
}

/// A collection's running tally as the progress line shows it: documents written by this run
/// and documents a previous run had already imported are told apart, as in the report.
#[derive(Clone, Copy)]
pub struct Counts {
    pub read: u64,
    pub imported: u64,
    pub already: u64,
    pub rejected: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { read, imported, already, rejected } = self;
        write!(f, "{read} read, {imported} imported, ")?;
        if *already > 0 {
            write!(f, "{already} already imported, ")?;
        }
        write!(f, "{rejected} rejected")
    }
}

fn percent(n: u64, total: u64) -> u64 {
    n.saturating_mul(100).checked_div(total).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::Counts;

    #[test]
    fn a_resumed_run_does_not_call_earlier_documents_imported() {
        let c = Counts { read: 20, imported: 7, already: 13, rejected: 0 };
        assert_eq!(c.to_string(), "20 read, 7 imported, 13 already imported, 0 rejected");
        let fresh = Counts { already: 0, imported: 20, ..c };
        assert_eq!(fresh.to_string(), "20 read, 20 imported, 0 rejected");
    }
}
