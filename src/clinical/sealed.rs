//! Every sealed column of the schema, with the column that is its row id in the associated
//! data. `custos keys rewrap` walks exactly this list; a test compares it with the catalog
//! (every `*_enc` column must be here), so a new sealed column cannot be forgotten.

/// `(table, sealed column)`; the row id is always the table's `id`.
pub const SEALED_COLUMNS: &[(&str, &str)] = &[
    ("users", "email_enc"),
    ("users", "display_name_enc"),
    ("mfa_credentials", "secret_enc"),
    ("patients", "mrn_enc"),
    ("patients", "given_name_enc"),
    ("patients", "family_name_enc"),
    ("patients", "birth_date_enc"),
    ("patients", "ssn_enc"),
    ("patients", "phone_enc"),
    ("patients", "email_enc"),
    ("patients", "address_enc"),
    ("patient_medical_info", "emergency_contact_enc"),
    ("allergies", "reaction_enc"),
    ("medications", "notes_enc"),
    ("medical_history", "notes_enc"),
    ("prescriptions", "instructions_enc"),
    ("prescriptions", "cancel_reason_enc"),
    ("conversations", "subject_enc"),
    ("messages", "body_enc"),
    ("attachments", "filename_enc"),
    ("attachments", "content_enc"),
    // The stored answer of a write sent with an Idempotency-Key (src/clinical/idempotency.rs).
    ("idempotency_keys", "answer_enc"),
    ("staff_profiles", "family_name_enc"),
    ("staff_profiles", "address_enc"),
    ("patient_flags", "deceased_on_enc"),
    ("monitor_decisions", "note_enc"),
    // The break-glass reason (issue 19); the ledger carries only its commitment.
    ("break_glass_grants", "reason_enc"),
    // The outbox (issue 19): a patient invite's address and message, which holds the code.
    ("outbox_messages", "recipient_enc"),
    ("outbox_messages", "body_enc"),
];

/// Tables that never change once written (a trigger refuses UPDATE); rewrap must lift the
/// guard for its own re-encryption only — see `crate::cli::keys`.
pub const APPEND_ONLY: &[&str] = &["messages"];
