-- Idempotency-Key (IETF httpapi draft "The Idempotency-Key HTTP Header Field"): the answer to
-- a clinical write sent with a key, stored in the write's own transaction, so that a client
-- whose answer was lost can retry and get the same answer without a second write. Keys are
-- the user's own (RLS, policies/45_rls_idempotency.sql); an answer is replayed for 24 hours.
-- The answer may carry clinical content: it is sealed like every other PHI column
-- (AES-256-GCM under the current data key, associated data idempotency_keys.answer_enc.<id>).

CREATE TABLE idempotency_keys (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idem_key      text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint   bytea NOT NULL CHECK (length(fingerprint) = 32),
    status        smallint NOT NULL CHECK (status BETWEEN 200 AND 299),
    answer_enc    bytea NOT NULL,
    -- The patient the write was about, whom a replay names in its audit event.
    patient_id    uuid,
    request_id    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idem_key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_org_idx ON idempotency_keys (org_id);
