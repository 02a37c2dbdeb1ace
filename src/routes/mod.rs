//! The HTTP surface: one module per resource; handlers stay thin and call services.

pub mod health;

use actix_web::web;

use crate::auth::rate_limit::AuthLimiter;

/// Registers every route. `auth_limiter` guards `/v1/auth/*` (per-IP rate limit).
pub fn configure(cfg: &mut web::ServiceConfig, auth_limiter: AuthLimiter) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics));
    cfg.service(web::scope("/v1/auth").wrap(auth_limiter));
}
