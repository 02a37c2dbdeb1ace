//! The HTTP surface: one module per resource; handlers stay thin and call services.

pub mod audit;
pub mod audit_export;
pub mod health;

use actix_web::web;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/v1/audit/keys", web::get().to(audit::keys));
    // The authenticated ledger routes (`audit::configure::<AuthUser>`) are registered once
    // the identity issue's AuthUser extractor is merged.
}
