//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations
//! and the request/response types (utoipa), so it cannot drift from the code it describes.

use actix_web::HttpResponse;
use utoipa::OpenApi;

/// Every error response: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorInner,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorInner {
    /// Stable machine-readable code: validation_failed, not_found, conflict, unauthorized, …
    pub code: String,
    /// Safe human-readable message (never PHI).
    pub message: String,
    /// For validation_failed: the offending field.
    pub field: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Custos API", version = "1", description = "HIPAA-focused clinical records and audit backend. \
        Every clinical request is authenticated (Bearer JWT bound to a live session), filtered by row-level \
        security, field-encrypted at rest, and recorded in the audit ledger. Not-found and forbidden are both 404."),
    paths(
        super::patients::list, super::patients::create, super::patients::chart,
        super::records::get_medical_info, super::records::put_medical_info,
        super::records::list_allergies, super::records::create_allergy,
        super::records::list_medications, super::records::create_medication, super::records::end_medication,
        super::records::list_history, super::records::create_history,
        super::prescriptions::list, super::prescriptions::create, super::prescriptions::get,
        super::prescriptions::refill, super::prescriptions::cancel, super::prescriptions::pdf,
        super::conversations::create, super::conversations::list_for_patient, super::conversations::list,
        super::conversations::get, super::conversations::messages, super::conversations::post_message,
        super::conversations::close,
        super::attachments::upload_to_patient, super::attachments::upload_to_conversation,
        super::attachments::list, super::attachments::download,
        super::care_team::list, super::care_team::add, super::care_team::remove_by_body,
        super::care_team::remove, super::care_team::break_glass, super::care_team::reason, super::care_team::lift_limit,
        super::ops_doc::healthz, super::ops_doc::readyz, super::ops_doc::openapi_json,
        super::ops_doc::login, super::ops_doc::mfa_verify, super::ops_doc::refresh, super::ops_doc::logout,
        super::ops_doc::register, super::ops_doc::me, super::ops_doc::change_password, super::ops_doc::sessions,
        super::ops_doc::revoke_session, super::ops_doc::mfa_enroll, super::ops_doc::mfa_confirm,
        super::ops_doc::recovery_codes, super::ops_doc::admin_create_user, super::ops_doc::admin_list_users,
        super::ops_doc::admin_user_action, super::ops_doc::invite,
        super::audit_doc::keys, super::audit_doc::checkpoint, super::audit_doc::inclusion,
        super::audit_doc::consistency, super::audit_doc::events, super::audit_doc::export,
        super::audit_doc::access_report,
    ),
    components(schemas(ErrorBody, ErrorInner)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::review::MonitoringDoc::openapi());
    HttpResponse::Ok().json(doc)
}
