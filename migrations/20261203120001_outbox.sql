-- The outbox (issue 19, "invites the issuer can't redeem"): messages to a patient's contact on
-- file that the staff member who caused them must never read. A patient invite's code goes
-- here, sealed, instead of into the issuer's answer; the sender inside `custos serve`
-- (src/auth/outbox_sender.rs) takes due messages, delivers them (SMTP, or in development a
-- file only the operator can read) and deletes them: a delivered or abandoned message leaves
-- no code behind, only its audit events.
--   recipient_enc  the address, sealed (AAD: outbox_messages.recipient_enc.<id>)
--   body_enc       the message text holding the code, sealed (AAD: outbox_messages.body_enc.<id>)
--   attempts, next_attempt_at, last_error  retries with back-off; last_error is a class
--                  ('connection', 'transient', 'permanent', ...), never a server's reply (it
--                  can quote the address)
-- Who reads which row: policies/37_outbox.sql (staff enqueue and see nothing).
CREATE TABLE outbox_messages (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL,
    kind             text NOT NULL CONSTRAINT outbox_messages_kind_check CHECK (kind IN ('patient_invite')),
    invite_id        uuid NOT NULL REFERENCES patient_invites (id) ON DELETE CASCADE,
    patient_id       uuid NOT NULL,
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    recipient_enc    bytea NOT NULL,
    body_enc         bytea NOT NULL,
    attempts         integer NOT NULL DEFAULT 0 CONSTRAINT outbox_messages_attempts_check CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text CONSTRAINT outbox_messages_last_error_check
                     CHECK (last_error IS NULL OR last_error ~ '^[a-z_]{1,32}$'),
    CONSTRAINT outbox_messages_patient_fkey FOREIGN KEY (patient_id, org_id)
        REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    CONSTRAINT outbox_messages_created_by_fkey FOREIGN KEY (created_by, org_id)
        REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX outbox_messages_due_idx ON outbox_messages (next_attempt_at);
CREATE INDEX outbox_messages_invite_idx ON outbox_messages (invite_id);
CREATE INDEX outbox_messages_patient_idx ON outbox_messages (patient_id, org_id);
CREATE INDEX outbox_messages_created_by_idx ON outbox_messages (created_by, org_id);
