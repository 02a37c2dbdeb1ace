//! The HTTP surface: one module per resource; handlers stay thin and call services.

pub mod admin_users;
pub mod attachments;
pub mod auth;
pub mod care_team;
pub mod clinical;
pub mod conversations;
pub mod health;
pub mod invites;
pub mod me;
pub mod openapi;
mod ops_doc;
pub mod patients;
pub mod prescriptions;
pub mod records;

use actix_web::{Resource, web};

use crate::auth::rate_limit::AuthLimiter;
use crate::error::ApiError;

/// Registers every route. `auth_limiter` guards `/v1/auth/*` (per-IP rate limit).
pub fn configure(cfg: &mut web::ServiceConfig, auth_limiter: AuthLimiter) {
    cfg.service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/metrics").route(web::get().to(health::metrics)));
    cfg.service(
        web::scope("/v1/auth")
            .wrap(auth_limiter)
            .route("/login", web::post().to(auth::login))
            .route("/mfa/verify", web::post().to(auth::mfa_verify))
            .route("/refresh", web::post().to(auth::refresh))
            .route("/logout", web::post().to(auth::logout))
            .route("/register", web::post().to(auth::register)),
    );
    cfg.route("/v1/me", web::get().to(me::me))
        .route("/v1/me/password", web::post().to(me::change_password))
        .route("/v1/me/sessions", web::get().to(me::sessions))
        .route("/v1/me/sessions/{id}", web::delete().to(me::revoke_session))
        .route("/v1/me/mfa/enroll", web::post().to(me::mfa_enroll))
        .route("/v1/me/mfa/confirm", web::post().to(me::mfa_confirm))
        .route("/v1/me/mfa/recovery-codes", web::post().to(me::recovery_codes))
        .route("/v1/admin/users", web::post().to(admin_users::create))
        .route("/v1/admin/users", web::get().to(admin_users::list))
        .route("/v1/admin/users/{id}/{action}", web::post().to(admin_users::act))
        .route("/v1/patients/{id}/invite", web::post().to(invites::issue));
    cfg.service(resource("/openapi.json").route(web::get().to(openapi::openapi_json)));
    clinical::configure(cfg);
}

/// A resource whose unmatched methods answer 405 (JSON) rather than falling through to 404.
pub fn resource(path: &str) -> Resource {
    web::resource(path)
        .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed) }))
}
