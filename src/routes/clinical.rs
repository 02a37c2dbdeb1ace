//! Route table of the clinical API and the one helper every clinical handler uses:
//! [`audited`] opens the request transaction, runs the service, and records exactly one
//! audit event (success in the same transaction, denied/error in its own).

use actix_web::web;
use uuid::Uuid;

use super::resource;
use super::{attachments, care_team, conversations, patients, prescriptions, records};
use crate::audit::Action;
use crate::clinical::{ClinicalError, Req};
use crate::error::ApiError;
use crate::middleware::caller::Caller;
use crate::state::AppState;

/// Runs `f` inside an audited request as `user`.
///
/// If `f` met a value sealed under a data key version this server has not loaded (another
/// server already writes with a rotated key), the keys are reloaded and, if that made the
/// version available, `f` runs once more in a fresh transaction; the first attempt is rolled
/// back unrecorded, so the request still leaves exactly one audit event.
pub async fn audited<'a, T: serde::Serialize>(
    state: &'a AppState,
    user: &'a Caller,
    action: Action,
    resource_type: &'static str,
    f: impl AsyncFn(&mut Req<'a>) -> Result<T, ClinicalError>,
) -> Result<T, ApiError> {
    run(state, user, None, action, resource_type, f).await
}

/// [`audited`] for a request about one patient (`/v1/patients/{id}/…`): the transaction is
/// scoped to that patient, so RLS decides access once per statement rather than per row.
pub async fn audited_for<'a, T: serde::Serialize>(
    state: &'a AppState,
    user: &'a Caller,
    patient: Uuid,
    action: Action,
    resource_type: &'static str,
    f: impl AsyncFn(&mut Req<'a>) -> Result<T, ClinicalError>,
) -> Result<T, ApiError> {
    run(state, user, Some(patient), action, resource_type, f).await
}

async fn run<'a, T: serde::Serialize>(
    state: &'a AppState,
    user: &'a Caller,
    scope: Option<Uuid>,
    action: Action,
    resource_type: &'static str,
    f: impl AsyncFn(&mut Req<'a>) -> Result<T, ClinicalError>,
) -> Result<T, ApiError> {
    let mut req = Req::new(state, user.clinical(), action, resource_type, scope);
    let mut result = f(&mut req).await;
    if let (Err(_), Some(version)) = (&result, req.unknown_key_version())
        && state.crypto.keyring.reload_for(version).await
    {
        req.abandon().await;
        req = Req::new(state, user.clinical(), action, resource_type, scope);
        result = f(&mut req).await;
    }
    req.finish(result).await
}

/// Registers the clinical routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, post, put};
    cfg.service(resource("/v1/patients").route(get().to(patients::list)).route(post().to(patients::create)))
        .service(resource("/v1/patients/{id}").route(get().to(patients::chart)))
        .service(
            resource("/v1/patients/{id}/medical-info")
                .route(get().to(records::get_medical_info))
                .route(put().to(records::put_medical_info)),
        )
        .service(
            resource("/v1/patients/{id}/allergies")
                .route(get().to(records::list_allergies))
                .route(post().to(records::create_allergy)),
        )
        .service(
            resource("/v1/patients/{id}/medications")
                .route(get().to(records::list_medications))
                .route(post().to(records::create_medication)),
        )
        .service(resource("/v1/patients/{id}/medications/{mid}/end").route(post().to(records::end_medication)))
        .service(
            resource("/v1/patients/{id}/history")
                .route(get().to(records::list_history))
                .route(post().to(records::create_history)),
        )
        .service(
            resource("/v1/patients/{id}/prescriptions")
                .route(get().to(prescriptions::list))
                .route(post().to(prescriptions::create)),
        )
        .service(resource("/v1/prescriptions/{id}.pdf").route(get().to(prescriptions::pdf)))
        .service(resource("/v1/prescriptions/{id}").route(get().to(prescriptions::get)))
        .service(resource("/v1/prescriptions/{id}/refill").route(post().to(prescriptions::refill)))
        .service(resource("/v1/prescriptions/{id}/cancel").route(post().to(prescriptions::cancel)))
        .service(
            resource("/v1/patients/{id}/conversations")
                .route(get().to(conversations::list_for_patient))
                .route(post().to(conversations::create)),
        )
        .service(resource("/v1/conversations").route(get().to(conversations::list)))
        .service(resource("/v1/conversations/{id}").route(get().to(conversations::get)))
        .service(
            resource("/v1/conversations/{id}/messages")
                .route(get().to(conversations::messages))
                .route(post().to(conversations::post_message)),
        )
        .service(resource("/v1/conversations/{id}/close").route(post().to(conversations::close)))
        .service(resource("/v1/conversations/{id}/attachments").route(post().to(attachments::upload_to_conversation)))
        .service(
            resource("/v1/patients/{id}/attachments")
                .route(get().to(attachments::list))
                .route(post().to(attachments::upload_to_patient)),
        )
        .service(resource("/v1/attachments/{id}").route(get().to(attachments::download)))
        .service(
            resource("/v1/patients/{id}/care-team")
                .route(get().to(care_team::list))
                .route(post().to(care_team::add))
                .route(delete().to(care_team::remove_by_body)),
        )
        .service(resource("/v1/patients/{id}/care-team/{clinician_id}").route(delete().to(care_team::remove)))
        .service(resource("/v1/patients/{id}/break-glass").route(post().to(care_team::break_glass)))
        .service(resource("/v1/break-glass/{id}/reason").route(get().to(care_team::reason)))
        .service(resource("/v1/break-glass/allowances").route(post().to(care_team::lift_limit)));
}
