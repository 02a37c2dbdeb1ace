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

    pub fn update(&mut self, bytes: u64, read: u64, imported: u64, rejected: u64) {
        let msg = format!("{read} read, {imported} imported, {rejected} rejected");
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.set_message(msg);
        } else if !self.quiet && self.last.elapsed() >= Duration::from_secs(2) {
            self.last = Instant::now();
            eprintln!("import {}: {}% ({msg})", self.name, percent(bytes, self.total));
        }
    }

    pub fn finish(self, read: u64, imported: u64, rejected: u64) {
        let msg = format!("{read} read, {imported} imported, {rejected} rejected");
        match self.bar {
            Some(bar) => bar.finish_with_message(msg),
            None if !self.quiet => eprintln!("import {}: done ({msg})", self.name),
            None => {}
        }
    }
}

fn percent(n: u64, total: u64) -> u64 {
    n.saturating_mul(100).checked_div(total).unwrap_or(100)
}
