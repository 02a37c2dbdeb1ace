//! `ApiError`: the one error type of the HTTP layer. Each variant maps to a status code and a
//! stable machine-readable `code`; the body is always `{"error": {"code", "message"}}`.
//! Messages are safe to show: never PHI, never a secret, never an internal detail. 5xx causes
//! are logged (with the request id) and replaced by a generic message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (bad JSON, bad query string, bad header).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid input: which field, which rule.
    #[error("{field}: {rule}")]
    Validation { field: String, rule: String },
    /// A new password breaks the password policy; every broken rule is listed.
    #[error("the password was rejected: {}", .0.iter().map(|v| v.message()).collect::<Vec<_>>().join(" "))]
    WeakPassword(Vec<crate::auth::password::PolicyViolation>),
    /// Missing, invalid or expired credentials. Deliberately says nothing more.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated but not allowed (only where hiding existence is not needed).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such resource — or one the caller may not see: the two look the same.
    #[error("not found")]
    NotFound,
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the current state (duplicate, wrong status, limit reached).
    #[error("{0}")]
    Conflict(String),
    /// Body larger than allowed.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Wrong or missing Content-Type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many requests; retry after the given seconds.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (the database) is unavailable, or the request lost a race it may win on a
    /// retry (serialization failure, deadlock): 503 with `Retry-After`.
    #[error("service unavailable")]
    Unavailable,
    /// A stored sealed value failed to open (altered, moved to another row, or its key is
    /// missing). `location` is `table.column`, never the value; the failure is audited.
    #[error("a stored value failed its integrity check")]
    Integrity { location: String },
    /// A bug or an infrastructure failure; details go to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// `Retry-After` of a 503: long enough for a pooled connection to be replaced or a database
/// fail-over to settle, short enough that a client retrying once loses little.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    violations: Option<&'a [crate::auth::password::PolicyViolation]>,
}

impl ApiError {
    pub fn validation(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), rule: rule.into() }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation { .. } => "validation_failed",
            Self::WeakPassword(_) => "password_policy",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { code, .. } => code,
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Integrity { .. } => "data_integrity",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation { .. } | Self::WeakPassword(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Integrity { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(e) = self {
            // The cause chain may name tables or constraints, never request bodies.
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        if let Self::Integrity { location } = self {
            tracing::error!(location = %location, "sealed value failed its integrity check");
        }
        let field = match self {
            Self::Validation { field, .. } => Some(field.as_str()),
            Self::WeakPassword(_) => Some("password"),
            _ => None,
        };
        let violations = match self {
            Self::WeakPassword(v) => Some(v.as_slice()),
            _ => None,
        };
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            Self::RateLimited { retry_after_secs } => {
                resp.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            Self::Unavailable => {
                resp.insert_header(("Retry-After", UNAVAILABLE_RETRY_AFTER_SECS.to_string()));
            }
            _ => {}
        }
        resp.json(Body { error: Inner { code: self.code(), message: self.to_string(), field, violations } })
    }
}

/// A domain type refused its input: 422 naming the field and the rule (never the value).
impl From<crate::domain::DomainError> for ApiError {
    fn from(e: crate::domain::DomainError) -> Self {
        Self::validation(e.field().to_owned(), e.rule().to_string())
    }
}

/// Database errors: constraint violations are the client's fault (4xx) and are mapped here,
/// in one place, by SQLSTATE; everything else is an internal or availability error.
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable or transaction lost a race: 503");
            return Self::Unavailable;
        }
        match &e {
            sqlx::Error::Database(db) => {
                match db.code().as_deref() {
                    Some(code @ ("23505" | "23514" | "23503" | "23P01")) => {
                        constraint_violation(code, db.constraint()).unwrap_or_else(|| Self::Internal(e.into()))
                    }
                    Some("23502") => Self::validation("field", "a required value is missing"),
                    Some("22P02") | Some("22007") | Some("22008") | Some("22003") => {
                        Self::BadRequest("a value has an invalid format".into())
                    }
                    // Row-level security refused the row: indistinguishable from absence.
                    Some("42501") => Self::NotFound,
                    _ => Self::Internal(e.into()),
                }
            }
            sqlx::Error::RowNotFound => Self::NotFound,
            _ => Self::Internal(e.into()),
        }
    }
}

/// How a violation of one database constraint is answered. The constraint's name describes
/// the schema: it goes to the log, never to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintAnswer {
    /// 422 `validation_failed`: the API field and the rule it breaks (a domain type should
    /// have refused the value first; this is the last line).
    Invalid { field: &'static str, rule: &'static str },
    /// 409 `conflict` with this message (a duplicate, or a race with another request).
    Conflict(&'static str),
    /// 404: the row refers to a resource from the path that is not there (or not visible).
    NotFound,
    /// Only the server writes these columns: a violation is a bug, answered 500 and logged.
    Internal,
}

use ConstraintAnswer::{Conflict as Dup, Internal as Bug, Invalid, NotFound as Gone};

/// Every constraint and unique index in migrations/, by name, and its answer. One table: a
/// new constraint needs a line here (`tests/db/constraints.rs` compares this list with the
/// catalog, both ways, and checks no answer leaks a name).
pub const CONSTRAINTS: &[(&str, ConstraintAnswer)] = &[
    // Identity.
    ("organizations_name_check", Invalid { field: "name", rule: "must be 1 to 200 characters" }),
    ("organizations_name_key", Dup("an organization with this name already exists")),
    ("organizations_pkey", Bug),
    ("users_consecutive_failures_check", Bug),
    ("users_created_by_fkey", Bug),
    ("users_email_bidx_check", Bug),
    ("users_org_id_email_bidx_key", Dup("a user with this email already exists in your organization")),
    ("users_failed_attempts_check", Bug),
    ("users_id_org_id_key", Bug),
    ("users_org_id_fkey", Bug),
    ("users_password_hash_check", Bug),
    ("users_pkey", Bug),
    ("mfa_credentials_pkey", Bug),
    ("mfa_credentials_user_id_org_id_fkey", Bug),
    ("mfa_credentials_user_key", Dup("multi-factor authentication is already being enrolled")),
    ("mfa_challenges_check", Bug),
    ("mfa_challenges_failed_attempts_check", Bug),
    ("mfa_challenges_pkey", Bug),
    ("mfa_challenges_token_hash_check", Bug),
    ("mfa_challenges_token_key", Bug),
    ("mfa_challenges_user_id_org_id_fkey", Bug),
    ("recovery_codes_code_hash_check", Bug),
    ("recovery_codes_hash_key", Bug),
    ("recovery_codes_pkey", Bug),
    ("recovery_codes_user_id_org_id_fkey", Bug),
    ("sessions_check", Bug),
    ("sessions_check1", Bug),
    ("sessions_id_org_key", Bug),
    ("sessions_pkey", Bug),
    ("sessions_revoked_reason_check", Bug),
    ("sessions_user_agent_check", Bug),
    ("sessions_user_id_org_id_fkey", Bug),
    ("refresh_tokens_check", Bug),
    ("refresh_tokens_hash_key", Bug),
    ("refresh_tokens_pkey", Bug),
    ("refresh_tokens_replaced_by_fkey", Bug),
    ("refresh_tokens_session_org_fkey", Bug),
    ("refresh_tokens_token_hash_check", Bug),
    // Passkeys (migrations/20261202140001_passkeys.sql).
    ("passkey_credentials_pkey", Bug),
    ("passkey_credentials_credential_id_check", Bug),
    ("passkey_credentials_credential_key", Dup("this passkey is already registered")),
    ("passkey_credentials_sign_count_check", Bug),
    ("passkey_credentials_label_check", Invalid { field: "label", rule: "must be 1 to 100 characters" }),
    ("passkey_credentials_user_fkey", Bug),
    ("passkey_ceremonies_pkey", Bug),
    ("passkey_ceremonies_token_hash_check", Bug),
    ("passkey_ceremonies_token_key", Bug),
    ("passkey_ceremonies_kind_check", Bug),
    ("passkey_ceremonies_expiry_check", Bug),
    ("passkey_ceremonies_binding_check", Bug),
    ("passkey_ceremonies_user_fkey", Bug),
    ("patient_invites_check", Bug),
    ("patient_invites_code_hash_check", Bug),
    ("patient_invites_code_key", Bug),
    ("patient_invites_created_by_org_id_fkey", Bug),
    ("patient_invites_failed_attempts_check", Bug),
    ("patient_invites_patient_id_org_id_fkey", Gone),
    ("patient_invites_pkey", Bug),
    ("patient_invites_used_by_fkey", Bug),
    // The outbox (issue 19): written by the server only; a patient deleted under an invite
    // is gone.
    ("outbox_messages_attempts_check", Bug),
    ("outbox_messages_created_by_fkey", Bug),
    ("outbox_messages_invite_id_fkey", Bug),
    ("outbox_messages_kind_check", Bug),
    ("outbox_messages_last_error_check", Bug),
    ("outbox_messages_patient_fkey", Gone),
    ("outbox_messages_pkey", Bug),
    // Patients and care.
    ("patients_created_by_org_id_fkey", Bug),
    ("patients_email_bidx_check", Bug),
    ("patients_id_org_id_key", Bug),
    ("patients_mrn_bidx_check", Bug),
    ("patients_org_id_fkey", Bug),
    ("patients_org_id_mrn_bidx_key", Dup("a patient with this MRN already exists")),
    ("patients_pkey", Bug),
    ("patients_user_id_key", Dup("this patient already has a portal account")),
    ("patients_user_id_org_id_fkey", Bug),
    ("patient_medical_info_height_cm_check", Invalid { field: "height_cm", rule: "must be between 20 and 300" }),
    ("patient_medical_info_weight_kg_check", Invalid { field: "weight_kg", rule: "must be between 0.2 and 700" }),
    ("patient_medical_info_patient_id_key", Dup("the medical information was changed by another request")),
    ("patient_medical_info_patient_id_org_id_fkey", Gone),
    ("patient_medical_info_pkey", Bug),
    ("patient_medical_info_updated_by_org_id_fkey", Bug),
    ("care_team_members_added_by_org_id_fkey", Bug),
    (
        "care_team_members_clinician_id_org_id_fkey",
        Invalid { field: "clinician_id", rule: "must be a user of this organization" },
    ),
    ("care_team_members_patient_id_clinician_id_key", Dup("the clinician is already on the care team")),
    ("care_team_members_patient_id_org_id_fkey", Gone),
    ("care_team_members_pkey", Bug),
    ("break_glass_grants_check", Bug),
    ("break_glass_grants_clinician_id_org_id_fkey", Bug),
    ("break_glass_grants_patient_id_org_id_fkey", Gone),
    ("break_glass_grants_pkey", Bug),
    ("break_glass_grants_reason_check", Invalid { field: "reason", rule: "must be 20 to 1000 characters" }),
    ("break_glass_grants_reason_present", Bug),
    ("break_glass_allowances_pkey", Bug),
    ("break_glass_allowances_check", Bug),
    ("break_glass_allowances_extra_check", Invalid { field: "extra", rule: "must be between 1 and 100" }),
    ("break_glass_allowances_clinician_id_org_id_fkey", Bug),
    ("break_glass_allowances_granted_by_org_id_fkey", Bug),
    // Chart sections.
    ("allergies_active_substance_key", Dup("an active allergy to this substance is already recorded")),
    ("allergies_patient_id_org_id_fkey", Gone),
    ("allergies_pkey", Bug),
    ("allergies_recorded_by_org_id_fkey", Bug),
    ("allergies_substance_check", Invalid { field: "substance", rule: "must be 1 to 200 characters" }),
    ("medications_check", Invalid { field: "end_date", rule: "must not be before start_date" }),
    ("medications_dose_check", Invalid { field: "dose", rule: "must be greater than 0" }),
    ("medications_frequency_check", Invalid { field: "frequency", rule: "must be 1 to 100 characters" }),
    ("medications_name_check", Invalid { field: "name", rule: "must be 1 to 200 characters" }),
    ("medications_patient_id_org_id_fkey", Gone),
    ("medications_pkey", Bug),
    ("medications_recorded_by_org_id_fkey", Bug),
    ("medications_unit_check", Invalid { field: "unit", rule: "must be 1 to 20 characters" }),
    ("medical_history_check", Invalid { field: "resolved_on", rule: "must not be before diagnosed_on" }),
    ("medical_history_description_check", Invalid { field: "description", rule: "must be at most 500 characters" }),
    ("medical_history_icd10_code_check", Invalid { field: "icd10_code", rule: "must be an ICD-10-CM code like E11.9" }),
    ("medical_history_patient_id_org_id_fkey", Gone),
    ("medical_history_pkey", Bug),
    ("medical_history_recorded_by_org_id_fkey", Bug),
    ("prescriptions_check", Dup("no refills remain")),
    (
        "prescriptions_check1",
        Invalid { field: "expires_at", rule: "must be after the issue time and at most one year after it" },
    ),
    ("prescriptions_check2", Bug),
    ("prescriptions_dose_check", Invalid { field: "dose", rule: "must be 1 to 100 characters" }),
    ("prescriptions_medication_check", Invalid { field: "medication", rule: "must be 1 to 200 characters" }),
    ("prescriptions_patient_id_org_id_fkey", Gone),
    ("prescriptions_pkey", Bug),
    ("prescriptions_prescriber_id_org_id_fkey", Bug),
    ("prescriptions_quantity_check", Invalid { field: "quantity", rule: "must be greater than 0 and at most 10000" }),
    ("prescriptions_refills_allowed_check", Invalid { field: "refills_allowed", rule: "must be between 0 and 11" }),
    // Conversations and attachments.
    (
        "conversations_assigned_clinician_id_org_id_fkey",
        Invalid { field: "assigned_clinician_id", rule: "must be a user of this organization" },
    ),
    ("conversations_check", Bug),
    ("conversations_id_patient_id_org_id_key", Bug),
    ("conversations_opened_by_org_id_fkey", Bug),
    ("conversations_patient_id_org_id_fkey", Gone),
    ("conversations_pkey", Bug),
    ("messages_conversation_id_patient_id_org_id_fkey", Gone),
    ("messages_pkey", Bug),
    ("messages_sender_id_org_id_fkey", Bug),
    ("symptoms_conversation_id_patient_id_org_id_fkey", Gone),
    ("symptoms_name_check", Invalid { field: "symptoms.name", rule: "must be 1 to 200 characters" }),
    ("symptoms_pkey", Bug),
    ("symptoms_severity_check", Invalid { field: "symptoms.severity", rule: "must be between 1 and 10" }),
    (
        "attachments_content_type_check",
        Invalid { field: "content_type", rule: "must be a media type like application/pdf" },
    ),
    (
        "attachments_conversation_id_patient_id_org_id_fkey",
        Invalid { field: "conversation_id", rule: "must be a conversation of this patient" },
    ),
    ("attachments_patient_id_org_id_fkey", Gone),
    ("attachments_pkey", Bug),
    ("attachments_sha256_check", Bug),
    ("attachments_size_bytes_check", Bug),
    ("attachments_uploaded_by_org_id_fkey", Bug),
    // The ledger, keys, the import map and schema state: written by the server alone.
    ("audit_inbox_actor_role_check", Bug),
    ("audit_inbox_correlation_id_check", Bug),
    ("audit_inbox_event_id_key", Bug),
    ("audit_inbox_format_version_check", Bug),
    ("audit_inbox_occurred_at_range", Bug),
    ("audit_inbox_org_id_fkey", Bug),
    ("audit_inbox_patient_ids_check", Bug),
    ("audit_inbox_pkey", Bug),
    ("audit_inbox_reason_check", Bug),
    ("audit_inbox_resource_ids_check", Bug),
    ("audit_inbox_resource_type_check", Bug),
    ("audit_inbox_user_agent_check", Bug),
    ("audit_log_chain_hash_check", Bug),
    ("audit_log_check", Bug),
    ("audit_log_event_id_key", Bug),
    ("audit_log_format_version_check", Bug),
    ("audit_log_leaf_hash_check", Bug),
    ("audit_log_org_id_fkey", Bug),
    ("audit_log_pkey", Bug),
    ("audit_log_seq_check", Bug),
    ("audit_checkpoints_pkey", Bug),
    ("audit_checkpoints_root_hash_check", Bug),
    ("audit_checkpoints_tree_size_check", Bug),
    ("audit_ledgers_chain_head_check", Bug),
    ("audit_ledgers_check", Bug),
    ("audit_ledgers_check1", Bug),
    ("audit_ledgers_org_id_fkey", Bug),
    ("audit_ledgers_org_id_key", Bug),
    ("audit_ledgers_pkey", Bug),
    ("audit_ledgers_root_hash_check", Bug),
    ("audit_ledgers_size_check", Bug),
    ("audit_ledgers_tree_state_check", Bug),
    ("audit_tree_nodes_hash_check", Bug),
    ("audit_tree_nodes_idx_check", Bug),
    ("audit_tree_nodes_level_check", Bug),
    ("audit_tree_nodes_pkey", Bug),
    ("encryption_keys_pkey", Bug),
    ("encryption_keys_version_check", Bug),
    ("encryption_keys_version_key", Bug),
    ("legacy_id_map_collection_check", Bug),
    ("legacy_id_map_legacy_id_check", Bug),
    ("legacy_id_map_org_id_fkey", Bug),
    ("legacy_id_map_org_id_source_collection_legacy_id_key", Bug),
    ("legacy_id_map_pkey", Bug),
    ("legacy_id_map_source_check", Bug),
    ("policy_state_digest_check", Bug),
    ("policy_state_pkey", Bug),
    ("policy_state_singleton_check", Bug),
    ("_sqlx_migrations_pkey", Bug),
    // Idempotency keys (src/clinical/idempotency.rs): the middleware validates the key and the
    // server computes everything else; a second request racing the first with one key loses.
    ("idempotency_keys_fingerprint_check", Bug),
    ("idempotency_keys_idem_key_check", Bug),
    ("idempotency_keys_org_id_fkey", Bug),
    ("idempotency_keys_pkey", Bug),
    ("idempotency_keys_status_check", Bug),
    ("idempotency_keys_user_id_fkey", Bug),
    (
        "idempotency_keys_user_id_idem_key_key",
        Dup("another request with this Idempotency-Key is in progress or was just completed; retry it"),
    ),
    // Privacy monitoring (migrations/20261202120001_privacy_monitoring.sql): the admin routes
    // validate their bodies first; the engine writes everything else.
    ("monitor_alert_events_alert_id_fkey", Bug),
    ("monitor_alert_events_pkey", Bug),
    ("monitor_alerts_bucket_check", Bug),
    ("monitor_alerts_check", Bug),
    ("monitor_alerts_detector_check", Bug),
    ("monitor_alerts_event_count_check", Bug),
    ("monitor_alerts_id_org_id_key", Bug),
    ("monitor_alerts_live_key", Bug),
    ("monitor_alerts_org_id_fkey", Bug),
    ("monitor_alerts_pkey", Bug),
    ("monitor_daily_stats_accesses_check", Bug),
    ("monitor_daily_stats_check", Bug),
    ("monitor_daily_stats_org_id_fkey", Bug),
    ("monitor_daily_stats_pkey", Bug),
    ("monitor_decisions_alert_id_org_id_fkey", Gone),
    ("monitor_decisions_event_id_key", Bug),
    ("monitor_decisions_pkey", Bug),
    ("monitor_decisions_reviewer_id_org_id_fkey", Bug),
    ("monitor_explanations_explanation_check", Bug),
    ("monitor_explanations_pkey", Bug),
    ("monitor_patient_keys_address_bidx_check", Bug),
    ("monitor_patient_keys_family_name_bidx_check", Bug),
    ("monitor_patient_keys_patient_id_org_id_fkey", Bug),
    ("monitor_patient_keys_pkey", Bug),
    ("monitor_user_state_baseline_days_check", Bug),
    ("monitor_user_state_hours_check", Bug),
    ("monitor_user_state_org_id_fkey", Bug),
    ("monitor_user_state_pkey", Bug),
    ("monitor_user_state_role_check", Bug),
    ("monitor_watermarks_check", Bug),
    ("monitor_watermarks_next_seq_check", Bug),
    ("monitor_watermarks_org_id_fkey", Bug),
    ("monitor_watermarks_org_id_key", Bug),
    ("monitor_watermarks_pkey", Bug),
    ("org_working_hours_days_check", Invalid { field: "days", rule: "must be an object of weekdays" }),
    ("org_working_hours_org_id_fkey", Bug),
    ("org_working_hours_pkey", Bug),
    ("org_working_hours_time_zone_check", Invalid { field: "time_zone", rule: "must be 1 to 64 characters" }),
    ("org_working_hours_updated_by_org_id_fkey", Bug),
    ("patient_flags_id_key", Bug),
    ("patient_flags_patient_id_org_id_fkey", Gone),
    ("patient_flags_pkey", Bug),
    ("patient_flags_updated_by_org_id_fkey", Bug),
    ("staff_profiles_address_bidx_check", Bug),
    ("staff_profiles_check", Bug),
    ("staff_profiles_check1", Bug),
    ("staff_profiles_family_name_bidx_check", Bug),
    ("staff_profiles_id_key", Bug),
    (
        "staff_profiles_patient_id_org_id_fkey",
        Invalid { field: "patient_id", rule: "must be a patient of this organization" },
    ),
    ("staff_profiles_patient_key", Dup("that patient record is already linked to another staff member")),
    ("staff_profiles_pkey", Bug),
    ("staff_profiles_updated_by_org_id_fkey", Bug),
    ("staff_profiles_user_id_org_id_fkey", Gone),
    // Prescriber profiles (migrations/20261202170001_prescriber_profiles.sql): the domain
    // types check every value first.
    ("prescriber_profiles_credentials_check", Invalid { field: "credentials", rule: "must be 1 to 100 characters" }),
    ("prescriber_profiles_dea_number_check", Invalid { field: "dea_number", rule: "must be a DEA number" }),
    ("prescriber_profiles_full_name_check", Invalid { field: "full_name", rule: "must be 1 to 200 characters" }),
    ("prescriber_profiles_npi_check", Invalid { field: "npi", rule: "must be a 10-digit NPI" }),
    ("prescriber_profiles_pkey", Bug),
    (
        "prescriber_profiles_practice_address_check",
        Invalid { field: "practice_address", rule: "must be 1 to 500 characters" },
    ),
    (
        "prescriber_profiles_practice_name_check",
        Invalid { field: "practice_name", rule: "must be 1 to 200 characters" },
    ),
    ("prescriber_profiles_practice_phone_check", Invalid { field: "practice_phone", rule: "must be an E.164 number" }),
    ("prescriber_profiles_updated_by_org_id_fkey", Bug),
    ("prescriptions_form_check", Invalid { field: "form", rule: "must be 1 to 200 characters" }),
    ("prescriptions_schedule_check", Invalid { field: "schedule", rule: "must be II, III, IV or V" }),
    ("prescriber_profiles_user_id_org_id_fkey", Gone),
    // Published ledgers (C2SP tlog-tiles, migrations/20261202130001_public_ledgers.sql): the
    // ledger comes from the path.
    ("audit_public_ledgers_ledger_id_fkey", Gone),
    ("audit_public_ledgers_pkey", Bug),
    ("audit_cosignatures_pkey", Bug),
    ("audit_cosignatures_witness_check", Bug),
    ("audit_cosignatures_signature_line_check", Bug),
    ("audit_witness_alerts_pkey", Bug),
    ("audit_witness_alerts_witness_check", Bug),
    ("audit_witness_alerts_http_status_check", Bug),
    ("audit_witness_alerts_detail_check", Bug),
];

/// The answer for a violation of `constraint` (SQLSTATE `code`, class 23); `None` when it is a
/// bug (the caller logs it as an internal error). A constraint missing from [`CONSTRAINTS`]
/// still never reaches the client by name: a generic answer by SQLSTATE, logged as a warning.
fn constraint_violation(code: &str, constraint: Option<&str>) -> Option<ApiError> {
    let name = constraint.unwrap_or("");
    let answer = CONSTRAINTS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a);
    if answer.is_none() {
        tracing::warn!(constraint = %name, sqlstate = %code, "constraint without an entry in error::CONSTRAINTS");
    }
    match answer {
        Some(Invalid { field, rule }) => Some(ApiError::validation(field, rule)),
        Some(Dup(message)) => Some(ApiError::Conflict(message.into())),
        Some(Gone) => Some(ApiError::NotFound),
        Some(Bug) => None,
        None if code == "23505" || code == "23P01" => Some(ApiError::Conflict("already exists".into())),
        None => Some(ApiError::validation("request", "breaks a data rule")),
    }
}

/// The identity services' errors, answered as the HTTP layer answers everything else (the
/// codes and messages clients see are these, unchanged).
impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as A;
        match e {
            A::BadRequest(m) => Self::BadRequest(m),
            A::Validation { field, rule } => Self::Validation { field, rule },
            A::WeakPassword(v) => Self::WeakPassword(v),
            A::Unauthorized => Self::Unauthorized,
            A::Forbidden { code, message } => Self::Forbidden { code, message },
            A::NotFound => Self::NotFound,
            A::Conflict(m) => Self::Conflict(m),
            A::Database(e) => e.into(),
            A::Internal(e) => Self::Internal(e),
        }
    }
}

/// The clinical services' errors, answered as the HTTP layer answers everything else (the
/// statuses, codes and messages clients see are these, unchanged).
impl From<crate::clinical::ClinicalError> for ApiError {
    fn from(e: crate::clinical::ClinicalError) -> Self {
        use crate::clinical::ClinicalError as C;
        match e {
            C::Validation { field, rule } => Self::Validation { field, rule },
            C::Unauthorized => Self::Unauthorized,
            C::Forbidden { code, message } => Self::Forbidden { code, message },
            C::NotFound => Self::NotFound,
            C::Conflict(m) => Self::Conflict(m),
            C::PayloadTooLarge => Self::PayloadTooLarge,
            C::UnsupportedMediaType(m) => Self::UnsupportedMediaType(m),
            C::Unavailable => Self::Unavailable,
            C::Integrity { location } => Self::Integrity { location },
            C::Crypto(e) => Self::Internal(e.into()),
            C::Database(e) => e.into(),
            C::Internal(e) => Self::Internal(e),
        }
    }
}

/// A clinical request's refusal or failure is recorded with the code of this answer
/// (`clinical::Req::finish`): outcome `error` for a 5xx, `denied` otherwise.
impl crate::clinical::request::Answer for ApiError {
    fn code(&self) -> &'static str {
        ApiError::code(self)
    }

    fn is_failure(&self) -> bool {
        self.status_code().is_server_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clinical::ClinicalError as C;
    use crate::clinical::request::Answer;

    /// Each clinical error is answered with the status, code and body fields the API gave
    /// before the services had their own enum; `Req::finish` records it as a failure exactly
    /// when the answer is a 5xx, and later (not now) exactly when it is a 503.
    #[test]
    fn clinical_errors_keep_their_answers_and_reason_codes() {
        let cases: Vec<(C, u16, &str, Option<&str>)> = vec![
            (C::validation("dose", "must be greater than 0"), 422, "validation_failed", Some("dose")),
            (C::Unauthorized, 401, "unauthorized", None),
            (
                C::Forbidden { code: "break_glass_daily_limit", message: "at most 3".into() },
                403,
                "break_glass_daily_limit",
                None,
            ),
            (C::NotFound, 404, "not_found", None),
            (C::Conflict("no refills remain".into()), 409, "conflict", None),
            (C::PayloadTooLarge, 413, "payload_too_large", None),
            (C::UnsupportedMediaType("Content-Type must be one of: …".into()), 415, "unsupported_media_type", None),
            (C::Unavailable, 503, "unavailable", None),
            (C::Integrity { location: "allergies.reaction_enc".into() }, 500, "data_integrity", None),
            (C::Crypto(crate::crypto::CryptoError::NoCurrentKey), 500, "internal", None),
            (C::Database(sqlx::Error::RowNotFound), 404, "not_found", None),
            (C::Database(sqlx::Error::PoolTimedOut), 503, "unavailable", None),
            (C::internal(anyhow::anyhow!("a bug")), 500, "internal", None),
        ];
        for (e, status, code, field) in cases {
            let (message, unavailable, database) = (e.to_string(), e.is_unavailable(), matches!(e, C::Database(_)));
            let api = ApiError::from(e);
            assert_eq!(api.status_code().as_u16(), status, "{api:?}");
            assert_eq!(Answer::code(&api), code, "{api:?}");
            assert_eq!(api.is_failure(), status >= 500, "{api:?}");
            assert_eq!(unavailable, status == 503, "{api:?}");
            if status < 500 && !database {
                // 4xx messages are the service's own (5xx ones are replaced by a generic text,
                // database errors are worded by the edge's classification).
                assert_eq!(api.to_string(), message);
            }
            if let ApiError::Validation { field: f, .. } = &api {
                assert_eq!(Some(f.as_str()), field);
            }
        }
    }
}
