-- Witness cosignatures (c2sp.org/tlog-cosignature) of signed checkpoints, and the refusals
-- that point at a fork (a witness saw a validly signed checkpoint inconsistent with what it
-- had cosigned). Both append-only. Ownership, grants and policies: policies/67_witness.sql.
CREATE TABLE audit_cosignatures (
    ledger_id      uuid NOT NULL,
    tree_size      bigint NOT NULL,
    -- The witness's vkey (`name+keyid+key`): one cosignature per witness and checkpoint.
    witness        text NOT NULL CHECK (length(witness) BETWEEN 1 AND 512),
    -- The note signature line, `— <name> <base64>` and its newline, as the witness sent it.
    signature_line text NOT NULL CHECK (length(signature_line) BETWEEN 1 AND 4096),
    cosigned_at    timestamptz NOT NULL DEFAULT now(),
    -- (ledger_id, tree_size) names a row of audit_checkpoints; no foreign key, so that a
    -- TRUNCATE of the checkpoints meets their append-only trigger rather than the key.
    PRIMARY KEY (ledger_id, tree_size, witness)
);

CREATE TABLE audit_witness_alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ledger_id   uuid NOT NULL,
    tree_size   bigint NOT NULL,
    witness     text NOT NULL CHECK (length(witness) BETWEEN 1 AND 512),
    http_status integer NOT NULL CHECK (http_status BETWEEN 100 AND 599),
    detail      text NOT NULL CHECK (length(detail) <= 2048),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_witness_alerts_ledger_idx ON audit_witness_alerts (ledger_id, created_at);

CREATE TRIGGER audit_cosignatures_append_only BEFORE UPDATE OR DELETE ON audit_cosignatures
    FOR EACH ROW EXECUTE FUNCTION custos.reject_mutation();
CREATE TRIGGER audit_witness_alerts_append_only BEFORE UPDATE OR DELETE ON audit_witness_alerts
    FOR EACH ROW EXECUTE FUNCTION custos.reject_mutation();
ALTER TABLE audit_cosignatures ENABLE ALWAYS TRIGGER audit_cosignatures_append_only;
ALTER TABLE audit_witness_alerts ENABLE ALWAYS TRIGGER audit_witness_alerts_append_only;
