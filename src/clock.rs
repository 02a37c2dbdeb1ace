//! The server's idea of "now" for everything time-based in sign-in: session idle and
//! absolute expiry, lockout expiry, token lifetimes, TOTP steps. It is the wall clock plus an
//! offset that is always zero in production; tests move it forward (`advance`) to check
//! 15-minute and 12-hour rules without sleeping.
//!
//! Every SQL comparison with one of these times takes "now" as a parameter from here, never
//! the database's `now()`, so the two clocks cannot disagree.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// The real clock.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Unix seconds of [`Clock::now`].
    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Moves the clock forward (tests only ever go forward).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// `std::time::Duration` → `chrono::Duration` (saturating; settings are bounded anyway).
pub fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let c = Clock::system();
        let before = c.now();
        c.advance(Duration::from_secs(3600));
        let gap = c.now() - before;
        assert!(gap >= chrono::Duration::seconds(3600) && gap < chrono::Duration::seconds(3610));
    }
}
