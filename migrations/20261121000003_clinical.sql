-- Clinical data: patients and everything hanging off a chart. Sensitive free text and
-- identifiers are sealed (AES-256-GCM envelope, *_enc bytea, see docs/data-classification.md);
-- coded values that queries filter or sort on stay plain.
-- Children reference (patient_id, org_id) so a row can never belong to a patient of another
-- organization, and clinical rows are never cascaded away: ON DELETE RESTRICT throughout.

CREATE TABLE patients (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    -- The patient's portal account, once they registered from an invite.
    user_id            uuid UNIQUE,
    mrn_enc            bytea NOT NULL,
    mrn_bidx           bytea NOT NULL CHECK (length(mrn_bidx) = 32),
    given_name_enc     bytea NOT NULL,
    family_name_enc    bytea NOT NULL,
    birth_date_enc     bytea NOT NULL,
    sex                sex NOT NULL DEFAULT 'unknown',
    ssn_enc            bytea,
    phone_enc          bytea,
    email_enc          bytea,
    email_bidx         bytea CHECK (email_bidx IS NULL OR length(email_bidx) = 32),
    address_enc        bytea,
    created_by         uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, org_id),
    UNIQUE (org_id, mrn_bidx),
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (created_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX patients_org_list_idx ON patients (org_id, created_at, id);
CREATE INDEX patients_user_org_idx ON patients (user_id, org_id);
CREATE INDEX patients_created_by_idx ON patients (created_by, org_id);
CREATE INDEX patients_email_bidx_idx ON patients (org_id, email_bidx);

CREATE TABLE patient_invites (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL,
    patient_id   uuid NOT NULL,
    code_hash    bytea NOT NULL CHECK (length(code_hash) = 32),
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    used_by      uuid REFERENCES users (id) ON DELETE RESTRICT,
    CHECK (expires_at > created_at),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (created_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX patient_invites_code_key ON patient_invites (code_hash);
CREATE INDEX patient_invites_patient_idx ON patient_invites (patient_id, org_id);
CREATE INDEX patient_invites_created_by_idx ON patient_invites (created_by, org_id);
CREATE INDEX patient_invites_used_by_idx ON patient_invites (used_by);

CREATE TABLE patient_medical_info (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                 uuid NOT NULL,
    patient_id             uuid NOT NULL UNIQUE,
    blood_type             blood_type NOT NULL DEFAULT 'unknown',
    height_cm              numeric(5, 1) CHECK (height_cm BETWEEN 20 AND 300),
    weight_kg              numeric(5, 1) CHECK (weight_kg BETWEEN 0.2 AND 700),
    emergency_contact_enc  bytea,
    updated_by             uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (updated_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX patient_medical_info_patient_org_idx ON patient_medical_info (patient_id, org_id);
CREATE INDEX patient_medical_info_updated_by_idx ON patient_medical_info (updated_by, org_id);

CREATE TABLE care_team_members (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL,
    patient_id    uuid NOT NULL,
    clinician_id  uuid NOT NULL,
    added_by      uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (patient_id, clinician_id),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (clinician_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (added_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
-- The clinician-side lookup every clinician policy check runs.
CREATE INDEX care_team_members_clinician_idx ON care_team_members (clinician_id, patient_id);
CREATE INDEX care_team_members_patient_org_idx ON care_team_members (patient_id, org_id);
CREATE INDEX care_team_members_clinician_org_idx ON care_team_members (clinician_id, org_id);
CREATE INDEX care_team_members_added_by_idx ON care_team_members (added_by, org_id);

CREATE TABLE break_glass_grants (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL,
    patient_id    uuid NOT NULL,
    clinician_id  uuid NOT NULL,
    reason        text NOT NULL CHECK (length(btrim(reason)) BETWEEN 20 AND 1000),
    granted_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    CHECK (expires_at > granted_at AND expires_at <= granted_at + interval '24 hours'),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (clinician_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX break_glass_grants_clinician_idx ON break_glass_grants (clinician_id, patient_id, expires_at);
CREATE INDEX break_glass_grants_patient_org_idx ON break_glass_grants (patient_id, org_id);
CREATE INDEX break_glass_grants_clinician_org_idx ON break_glass_grants (clinician_id, org_id);
CREATE INDEX break_glass_grants_org_time_idx ON break_glass_grants (org_id, granted_at);

CREATE TABLE allergies (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL,
    patient_id    uuid NOT NULL,
    substance     text NOT NULL CHECK (length(btrim(substance)) BETWEEN 1 AND 200),
    reaction_enc  bytea,
    severity      allergy_severity NOT NULL,
    status        record_status NOT NULL DEFAULT 'active',
    recorded_by   uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (recorded_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
-- No two active allergies to the same substance for one patient.
CREATE UNIQUE INDEX allergies_active_substance_key ON allergies (patient_id, lower(btrim(substance))) WHERE status = 'active';
CREATE INDEX allergies_patient_list_idx ON allergies (patient_id, org_id, created_at, id);
CREATE INDEX allergies_recorded_by_idx ON allergies (recorded_by, org_id);

CREATE TABLE medications (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL,
    patient_id    uuid NOT NULL,
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    dose          numeric(12, 4) NOT NULL CHECK (dose > 0),
    unit          text NOT NULL CHECK (length(unit) BETWEEN 1 AND 20),
    route         medication_route NOT NULL,
    frequency     text NOT NULL CHECK (length(btrim(frequency)) BETWEEN 1 AND 100),
    start_date    date NOT NULL,
    end_date      date CHECK (end_date IS NULL OR end_date >= start_date),
    status        medication_status NOT NULL DEFAULT 'active',
    notes_enc     bytea,
    recorded_by   uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (recorded_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX medications_patient_list_idx ON medications (patient_id, org_id, start_date, id);
CREATE INDEX medications_recorded_by_idx ON medications (recorded_by, org_id);

CREATE TABLE medical_history (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL,
    patient_id    uuid NOT NULL,
    -- ICD-10-CM: letter, digit, alphanumeric, then optionally a dot and up to 4 alphanumerics.
    icd10_code    text NOT NULL CHECK (icd10_code ~ '^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$'),
    description   text CHECK (description IS NULL OR length(description) <= 500),
    diagnosed_on  date NOT NULL,
    resolved_on   date CHECK (resolved_on IS NULL OR resolved_on >= diagnosed_on),
    notes_enc     bytea,
    recorded_by   uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (recorded_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX medical_history_patient_list_idx ON medical_history (patient_id, org_id, diagnosed_on, id);
CREATE INDEX medical_history_recorded_by_idx ON medical_history (recorded_by, org_id);
CREATE INDEX medical_history_code_idx ON medical_history (org_id, icd10_code);

CREATE TABLE prescriptions (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid NOT NULL,
    patient_id         uuid NOT NULL,
    prescriber_id      uuid NOT NULL,
    medication         text NOT NULL CHECK (length(btrim(medication)) BETWEEN 1 AND 200),
    dose               text NOT NULL CHECK (length(btrim(dose)) BETWEEN 1 AND 100),
    quantity           integer NOT NULL CHECK (quantity > 0 AND quantity <= 10000),
    refills_allowed    smallint NOT NULL CHECK (refills_allowed BETWEEN 0 AND 11),
    refills_used       smallint NOT NULL DEFAULT 0 CHECK (refills_used >= 0 AND refills_used <= refills_allowed),
    instructions_enc   bytea,
    issued_at          timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    status             prescription_status NOT NULL DEFAULT 'active',
    cancelled_at       timestamptz,
    cancel_reason_enc  bytea,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (expires_at > issued_at AND expires_at <= issued_at + interval '1 year'),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (prescriber_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX prescriptions_patient_list_idx ON prescriptions (patient_id, org_id, issued_at, id);
CREATE INDEX prescriptions_prescriber_idx ON prescriptions (prescriber_id, org_id, issued_at);
CREATE INDEX prescriptions_active_expiry_idx ON prescriptions (expires_at) WHERE status = 'active';

CREATE TABLE conversations (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                 uuid NOT NULL,
    patient_id             uuid NOT NULL,
    subject_enc            bytea NOT NULL,
    status                 conversation_status NOT NULL DEFAULT 'pending',
    assigned_clinician_id  uuid,
    opened_by              uuid,
    closed_at              timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    UNIQUE (id, patient_id, org_id),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (assigned_clinician_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (opened_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX conversations_patient_list_idx ON conversations (patient_id, org_id, created_at, id);
CREATE INDEX conversations_status_idx ON conversations (org_id, status, created_at, id);
CREATE INDEX conversations_assigned_idx ON conversations (assigned_clinician_id, org_id);
CREATE INDEX conversations_opened_by_idx ON conversations (opened_by, org_id);

-- Messages are append-only (a trigger below rejects UPDATE and DELETE). patient_id is
-- carried (and pinned to the conversation's by the composite FK) so RLS needs no join.
CREATE TABLE messages (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL,
    conversation_id  uuid NOT NULL,
    patient_id       uuid NOT NULL,
    sender_id        uuid NOT NULL,
    body_enc         bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (conversation_id, patient_id, org_id) REFERENCES conversations (id, patient_id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (sender_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX messages_conversation_list_idx ON messages (conversation_id, patient_id, org_id, created_at, id);
CREATE INDEX messages_sender_idx ON messages (sender_id, org_id);
CREATE TRIGGER messages_append_only BEFORE UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION custos.reject_mutation();

CREATE TABLE symptoms (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL,
    conversation_id  uuid NOT NULL,
    patient_id       uuid NOT NULL,
    name             text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    severity         smallint NOT NULL CHECK (severity BETWEEN 1 AND 10),
    onset            date,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (conversation_id, patient_id, org_id) REFERENCES conversations (id, patient_id, org_id) ON DELETE RESTRICT
);
CREATE INDEX symptoms_conversation_idx ON symptoms (conversation_id, patient_id, org_id, created_at, id);

CREATE TABLE attachments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL,
    patient_id       uuid NOT NULL,
    conversation_id  uuid,
    uploaded_by      uuid,
    filename_enc     bytea NOT NULL,
    content_type     text NOT NULL CHECK (content_type ~ '^[a-z0-9.+-]+/[a-z0-9.+-]+$'),
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    sha256           bytea NOT NULL CHECK (length(sha256) = 32),
    content_enc      bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (conversation_id, patient_id, org_id) REFERENCES conversations (id, patient_id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (uploaded_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX attachments_patient_list_idx ON attachments (patient_id, org_id, created_at, id);
CREATE INDEX attachments_conversation_idx ON attachments (conversation_id, patient_id, org_id);
CREATE INDEX attachments_uploaded_by_idx ON attachments (uploaded_by, org_id);

CREATE TRIGGER patients_touch BEFORE UPDATE ON patients FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER patient_medical_info_touch BEFORE UPDATE ON patient_medical_info FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER allergies_touch BEFORE UPDATE ON allergies FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER medications_touch BEFORE UPDATE ON medications FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER medical_history_touch BEFORE UPDATE ON medical_history FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER prescriptions_touch BEFORE UPDATE ON prescriptions FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER conversations_touch BEFORE UPDATE ON conversations FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
