//! The HTTP surface: one module per resource; handlers stay thin and call services.

pub mod health;

use actix_web::{Resource, web};

use crate::error::ApiError;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/metrics").route(web::get().to(health::metrics)));
}

/// A resource whose unmatched methods answer 405 (JSON) rather than falling through to 404.
pub fn resource(path: &str) -> Resource {
    web::resource(path)
        .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed) }))
}
