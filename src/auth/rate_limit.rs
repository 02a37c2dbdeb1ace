//! Per-IP rate limit on `/v1/auth/*` (`CUSTOS_AUTH_RATE_PER_MINUTE`): a fixed one-minute
//! window per client address, answered with 429, `Retry-After` and the standard JSON error.
//!
//! The middleware is `actix-extensible-rate-limit`; the backend is ours. The crate's
//! in-memory backend starts its garbage collector with `actix_web::rt::spawn` (a
//! `spawn_local`), which panics outside an actix system — e.g. when the server is built
//! under `#[tokio::test]` and run with `tokio::spawn`. This backend needs no task: it prunes
//! expired windows itself when the map grows, and one instance is shared by every worker so
//! the limit is per process, not per worker thread.

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

/// Prune expired windows once the map holds this many addresses.
const PRUNE_AT: usize = 10_000;

/// Fixed-window counters by key, shared by all workers.
#[derive(Clone, Default)]
pub struct WindowBackend {
    windows: Arc<Mutex<HashMap<String, (Instant, u64)>>>,
}

impl Backend<SimpleInput> for WindowBackend {
    type Output = SimpleOutput;
    type RollbackToken = String;
    type Error = Infallible;

    async fn request(&self, input: SimpleInput) -> Result<(Decision, SimpleOutput, String), Infallible> {
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-update; the counters are
        // still usable, and failing closed here would lock everyone out of signing in.
        let mut map = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= PRUNE_AT {
            map.retain(|_, (reset, _)| *reset > now);
        }
        let entry = map.entry(input.key.clone()).or_insert((now + input.interval, 0));
        if entry.0 <= now {
            *entry = (now + input.interval, 0);
        }
        entry.1 += 1;
        let (reset, count) = *entry;
        let output =
            SimpleOutput { limit: input.max_requests, remaining: input.max_requests.saturating_sub(count), reset };
        Ok((Decision::from_allowed(count <= input.max_requests), output, input.key))
    }

    async fn rollback(&self, key: String) -> Result<(), Infallible> {
        let mut map = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = map.get_mut(&key) {
            entry.1 = entry.1.saturating_sub(1);
        }
        Ok(())
    }
}

/// The key: the TCP peer address (IPv6 grouped by /64). Behind a proxy every client shares
/// the proxy's address; put the limit on the proxy then.
fn input_for(per_minute: u64) -> impl Fn(&ServiceRequest) -> Ready<Result<SimpleInput, actix_web::Error>> + 'static {
    move |req| {
        let key = req.peer_addr().map_or_else(|| "unknown".to_owned(), |a| ip_key(a.ip()));
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
    use actix_extensible_rate_limit::HeaderCompatibleOutput;
    let input: InputFn = Box::new(input_for(per_minute));
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
}
