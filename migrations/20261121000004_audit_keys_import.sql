-- The audit write path, the data-key table and the legacy import map.
--
-- audit_inbox is what request transactions INSERT into (the same transaction as the access,
-- so there is no access without a record). The sequencer moves inbox rows into audit_log,
-- assigning per-ledger `seq`, `leaf_hash` and `chain_hash`, and signs audit_checkpoints.
-- audit_log and audit_checkpoints are append-only: privileges are revoked in policies/ and
-- the triggers below raise on UPDATE/DELETE/TRUNCATE for everyone, the owner included.

CREATE TABLE audit_inbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    org_id          uuid REFERENCES organizations (id) ON DELETE RESTRICT,  -- NULL: system ledger
    actor_id        uuid,
    actor_role      text CHECK (actor_role IS NULL OR length(actor_role) <= 32),
    action          audit_action NOT NULL,
    resource_type   text NOT NULL CHECK (length(resource_type) BETWEEN 1 AND 64),
    resource_ids    text[] NOT NULL DEFAULT '{}' CHECK (cardinality(resource_ids) <= 1000),
    patient_id      uuid,
    outcome         audit_outcome NOT NULL,
    request_id      uuid,
    client_ip       inet,
    user_agent      text CHECK (user_agent IS NULL OR length(user_agent) <= 512),
    reason          text CHECK (reason IS NULL OR length(reason) <= 1000),
    break_glass     boolean NOT NULL DEFAULT false,
    imported        boolean NOT NULL DEFAULT false
);
CREATE INDEX audit_inbox_org_idx ON audit_inbox (org_id);

-- Same event columns as audit_inbox, plus the ledger position and hashes.
CREATE TABLE audit_log (
    ledger_id       uuid NOT NULL,    -- org_id, or the nil UUID for the system ledger
    seq             bigint NOT NULL CHECK (seq >= 0),
    event_id        uuid NOT NULL UNIQUE,
    occurred_at     timestamptz NOT NULL,
    org_id          uuid REFERENCES organizations (id) ON DELETE RESTRICT,
    actor_id        uuid,
    actor_role      text,
    action          audit_action NOT NULL,
    resource_type   text NOT NULL,
    resource_ids    text[] NOT NULL,
    patient_id      uuid,
    outcome         audit_outcome NOT NULL,
    request_id      uuid,
    client_ip       inet,
    user_agent      text,
    reason          text,
    break_glass     boolean NOT NULL,
    imported        boolean NOT NULL,
    leaf_hash       bytea NOT NULL CHECK (length(leaf_hash) = 32),
    chain_hash      bytea NOT NULL CHECK (length(chain_hash) = 32),
    integrated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ledger_id, seq),
    CHECK (ledger_id = coalesce(org_id, '00000000-0000-0000-0000-000000000000'::uuid))
);
CREATE INDEX audit_log_org_time_idx ON audit_log (org_id, occurred_at, seq);
CREATE INDEX audit_log_patient_idx ON audit_log (patient_id, occurred_at) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, occurred_at) WHERE actor_id IS NOT NULL;

CREATE TABLE audit_checkpoints (
    ledger_id    uuid NOT NULL,
    tree_size    bigint NOT NULL CHECK (tree_size >= 0),
    root_hash    bytea NOT NULL CHECK (length(root_hash) = 32),
    signed_note  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ledger_id, tree_size)
);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION custos.reject_mutation();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION custos.reject_mutation();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION custos.reject_mutation();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION custos.reject_mutation();
-- ENABLE ALWAYS: fire even under session_replication_role = replica.
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_append_only;
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate;

-- Envelope encryption: data keys (DEKs) wrapped by the key-encryption key from the
-- environment. Installation-wide (no PHI, no org). kek_check detects a wrong KEK at start-up.
CREATE TABLE encryption_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    version      integer NOT NULL UNIQUE CHECK (version > 0),
    wrapped_key  bytea NOT NULL,
    kek_check    bytea NOT NULL,
    status       key_status NOT NULL DEFAULT 'active',
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
);

-- Legacy ObjectId → new UUID: what makes an import idempotent and resumable.
CREATE TABLE legacy_id_map (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    source       text NOT NULL CHECK (length(source) BETWEEN 1 AND 64),
    collection   text NOT NULL CHECK (length(collection) BETWEEN 1 AND 64),
    legacy_id    text NOT NULL CHECK (length(legacy_id) BETWEEN 1 AND 200),
    new_id       uuid NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, source, collection, legacy_id)
);
CREATE INDEX legacy_id_map_new_id_idx ON legacy_id_map (new_id);
