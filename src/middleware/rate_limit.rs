//! Per-IP rate limit on `/v1/auth/*` (`CUSTOS_AUTH_RATE_PER_MINUTE`): a fixed one-minute
//! window per client address, answered with 429, `Retry-After` and the standard JSON error.
//!
//! The middleware is `actix-extensible-rate-limit`; the backend is ours. The crate's
//! in-memory backend starts its garbage collector with `actix_web::rt::spawn` (a
//! `spawn_local`), which panics outside an actix system — e.g. when the server is built
//! under `#[tokio::test]` and run with `tokio::spawn`. This backend needs no task: it prunes
//! expired windows itself, and one instance is shared by every worker so the limit is per
//! process, not per worker thread.
//!
//! Memory and CPU are bounded: the map holds at most [`MAX_KEYS`] windows; pruning (a scan
//! under the lock) runs at most once per window length; when the map is full of live windows
//! new clients share one overflow window — under a flood of distinct addresses the limit
//! degrades to a global one instead of growing without bound. IPv6 clients are keyed by
//! their /64 (one subscriber's allocation), so rotating addresses inside it does not help.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_extensible_rate_limit::RateLimiter;
use actix_extensible_rate_limit::backend::{Backend, Decision, SimpleInput, SimpleOutput};
use actix_web::ResponseError;
use actix_web::dev::ServiceRequest;
use actix_web::rt::time::Instant;

use crate::error::ApiError;

/// Most windows held at once (~100 bytes each).
pub const MAX_KEYS: usize = 100_000;
/// Start pruning expired windows once the map holds this many.
const PRUNE_AT: usize = 10_000;
/// The shared window of clients that find the map full.
const OVERFLOW_KEY: &str = "overflow";

#[derive(Default)]
struct Windows {
    map: HashMap<String, (Instant, u64)>,
    /// When the next prune may run (at most once per window length).
    next_prune: Option<Instant>,
}

/// Fixed-window counters by key, shared by all workers.
#[derive(Clone, Default)]
pub struct WindowBackend {
    windows: Arc<Mutex<Windows>>,
    max_keys: Option<usize>,
}

impl WindowBackend {
    /// A backend holding at most `max_keys` windows (tests use a small cap).
    pub fn with_capacity(max_keys: usize) -> Self {
        Self { max_keys: Some(max_keys), ..Self::default() }
    }

    /// How many windows are held.
    pub fn len(&self) -> usize {
        self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner).map.len()
    }

    /// True when no window is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Backend<SimpleInput> for WindowBackend {
    type Output = SimpleOutput;
    type RollbackToken = String;
    type Error = Infallible;

    async fn request(&self, input: SimpleInput) -> Result<(Decision, SimpleOutput, String), Infallible> {
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-update; the counters are
        // still usable, and failing closed here would lock everyone out of signing in.
        let max_keys = self.max_keys.unwrap_or(MAX_KEYS);
        let mut guard = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let w = &mut *guard;
        if w.map.len() >= PRUNE_AT.min(max_keys) && w.next_prune.is_none_or(|t| t <= now) {
            w.map.retain(|_, (reset, _)| *reset > now);
            w.next_prune = Some(now + input.interval);
        }
        let key = if w.map.len() >= max_keys && !w.map.contains_key(&input.key) {
            OVERFLOW_KEY.to_owned()
        } else {
            input.key
        };
        let entry = w.map.entry(key.clone()).or_insert((now + input.interval, 0));
        if entry.0 <= now {
            *entry = (now + input.interval, 0);
        }
        entry.1 += 1;
        let (reset, count) = *entry;
        let output =
            SimpleOutput { limit: input.max_requests, remaining: input.max_requests.saturating_sub(count), reset };
        Ok((Decision::from_allowed(count <= input.max_requests), output, key))
    }

    async fn rollback(&self, key: String) -> Result<(), Infallible> {
        let mut guard = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = guard.map.get_mut(&key) {
            entry.1 = entry.1.saturating_sub(1);
        }
        Ok(())
    }
}

/// The key: the TCP peer address (IPv6 grouped by /64). Behind a proxy every client shares
/// the proxy's address; put the limit on the proxy then.
fn input_for(
    per_minute: u64,
    prefix: &'static str,
) -> impl Fn(&ServiceRequest) -> Ready<Result<SimpleInput, actix_web::Error>> + 'static {
    move |req| {
        let ip = req.peer_addr().map_or_else(|| "unknown".to_owned(), |a| ip_key(a.ip()));
        let key = format!("{prefix}{ip}");
        ready(Ok(SimpleInput { interval: Duration::from_secs(60), max_requests: per_minute, key }))
    }
}

fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

type InputFn = Box<dyn Fn(&ServiceRequest) -> Ready<Result<SimpleInput, actix_web::Error>>>;

/// The rate-limit middleware of `/v1/auth/*`.
pub type AuthLimiter = RateLimiter<WindowBackend, SimpleOutput, InputFn>;

/// The middleware for one worker, over the shared `backend`.
pub fn limiter(backend: WindowBackend, per_minute: u64) -> AuthLimiter {
    build(backend, per_minute, "")
}

/// The middleware of a signed-in session's credential checks (`/v1/me/password`,
/// `/v1/me/mfa/*`): the same per-IP budget size, counted separately from `/v1/auth/*`.
pub fn account_limiter(backend: WindowBackend, per_minute: u64) -> AuthLimiter {
    build(backend, per_minute, "account:")
}

fn build(backend: WindowBackend, per_minute: u64, prefix: &'static str) -> AuthLimiter {
    use actix_extensible_rate_limit::HeaderCompatibleOutput;
    let input: InputFn = Box::new(input_for(per_minute, prefix));
    RateLimiter::builder(backend, input)
        .add_headers()
        .request_denied_response(|out: &SimpleOutput| {
            ApiError::RateLimited { retry_after_secs: out.seconds_until_reset().max(1) }.error_response()
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_v4_unwrapped() {
        assert_eq!(ip_key("2a00:1450:4009:81f::200e".parse().unwrap()), "2a00:1450:4009:81f::/64");
        assert_eq!(ip_key("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
    }

    #[tokio::test]
    async fn window_counts_then_denies() {
        let b = WindowBackend::default();
        let input = SimpleInput { interval: Duration::from_secs(60), max_requests: 2, key: "k".into() };
        for _ in 0..2 {
            assert!(b.request(input.clone()).await.unwrap().0.is_allowed());
        }
        let (d, out, _) = b.request(input.clone()).await.unwrap();
        assert!(d.is_denied());
        assert_eq!(out.remaining, 0);
        let other = SimpleInput { key: "other".into(), ..input };
        assert!(b.request(other).await.unwrap().0.is_allowed(), "keys are independent");
    }

    #[tokio::test]
    async fn the_map_is_capped_and_new_clients_share_an_overflow_window() {
        let b = WindowBackend::with_capacity(100);
        let input = |i: usize| SimpleInput { interval: Duration::from_secs(60), max_requests: 3, key: format!("k{i}") };
        for i in 0..1000 {
            let _ = b.request(input(i)).await.unwrap();
        }
        assert!(b.len() <= 101, "bounded: {}", b.len());
        // Clients beyond the cap share the overflow window, which is now exhausted.
        assert!(b.request(input(5000)).await.unwrap().0.is_denied());
        // Known clients keep their own window.
        assert!(b.request(input(0)).await.unwrap().0.is_allowed());
    }
}
