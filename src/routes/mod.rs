//! The HTTP surface: one module per resource; handlers stay thin and call services.

pub mod admin_users;
pub mod attachments;
pub mod audit;
pub mod audit_bundle;
pub mod audit_export;
pub mod auth;
pub mod care_team;
pub mod clinical;
pub mod conversations;
pub mod event_proof;
pub mod health;
pub mod invites;
pub mod me;
pub mod openapi;
pub mod passkeys;
pub mod patients;
pub mod prescriptions;
pub mod profiles;
pub mod records;
pub mod review;
pub mod tiles;

use actix_web::{Resource, web};

use crate::error::ApiError;
use crate::middleware::rate_limit::AuthLimiter;

/// Registers every route. `auth_limiter` guards `/v1/auth/*` (per-IP rate limit);
/// `account_limiter` the credential checks of a signed-in session (`/v1/me/password`,
/// `/v1/me/mfa/*`), so a stolen token cannot guess passwords or codes at full speed.
pub fn configure(cfg: &mut web::ServiceConfig, auth_limiter: AuthLimiter, account_limiter: AuthLimiter) {
    // First: `/v1/admin/users/{id}/profile` must win over `/v1/admin/users/{id}/{action}`.
    review::configure(cfg);
    // Before the `/v1/auth` scope, which would otherwise claim `/v1/auth/passkey/*`.
    passkeys::configure(cfg, auth_limiter.clone(), account_limiter.clone());
    cfg.service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)));
    cfg.service(
        web::scope("/v1/auth")
            .wrap(auth_limiter)
            .service(resource("/login").route(web::post().to(auth::login)))
            .service(resource("/mfa/verify").route(web::post().to(auth::mfa_verify)))
            .service(resource("/refresh").route(web::post().to(auth::refresh)))
            .service(resource("/logout").route(web::post().to(auth::logout)))
            .service(resource("/register").route(web::post().to(auth::register))),
    );
    cfg.service(resource("/v1/me").route(web::get().to(me::me)))
        .service(resource("/v1/me/password").wrap(account_limiter.clone()).route(web::post().to(me::change_password)))
        .service(resource("/v1/me/sessions").route(web::get().to(me::sessions)))
        .service(resource("/v1/me/sessions/{id}").route(web::delete().to(me::revoke_session)))
        .service(resource("/v1/me/mfa/enroll").wrap(account_limiter.clone()).route(web::post().to(me::mfa_enroll)))
        .service(resource("/v1/me/mfa/confirm").wrap(account_limiter.clone()).route(web::post().to(me::mfa_confirm)))
        .service(resource("/v1/me/mfa/recovery-codes").wrap(account_limiter).route(web::post().to(me::recovery_codes)))
        .service(
            resource("/v1/admin/users")
                .route(web::post().to(admin_users::create))
                .route(web::get().to(admin_users::list)),
        )
        .service(resource("/v1/admin/users/{id}/{action}").route(web::post().to(admin_users::act)))
        .service(resource("/v1/patients/{id}/invite").route(web::post().to(invites::issue)));
    cfg.service(resource("/v1/audit/keys").route(web::get().to(audit::keys)));
    audit::configure(cfg);
    tiles::configure(cfg);
    event_proof::configure(cfg);
    cfg.service(resource("/openapi.json").route(web::get().to(openapi::openapi_json)));
    clinical::configure(cfg);
}

/// A resource whose unmatched methods answer 405 (JSON) rather than falling through to 404.
pub fn resource(path: &str) -> Resource {
    web::resource(path)
        .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed) }))
}
