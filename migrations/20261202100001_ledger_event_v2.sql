-- Ledger event format version 2 (docs/ledger-format.md): two new members.
--   correlation_id  the client's own id of the request (X-Request-Id), kept apart from the
--                   server-generated request_id and never trusted to be unique;
--   patient_ids     every patient whose data an access returned or changed, for accesses that
--                   reach several (list reads, exports), so that each shows in that patient's
--                   accounting of disclosures.
-- format_version records which canonical form a stored row was hashed in: rows already in the
-- log stay version 1 (and keep verifying); everything written from now on is version 2.

ALTER TABLE audit_inbox
    ADD COLUMN correlation_id text CHECK (correlation_id IS NULL OR length(correlation_id) BETWEEN 1 AND 128),
    ADD COLUMN patient_ids uuid[] NOT NULL DEFAULT '{}' CHECK (cardinality(patient_ids) <= 10000),
    ADD COLUMN format_version smallint NOT NULL DEFAULT 2 CHECK (format_version = 2);

ALTER TABLE audit_log
    ADD COLUMN correlation_id text,
    ADD COLUMN patient_ids uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN format_version smallint NOT NULL DEFAULT 1 CHECK (format_version IN (1, 2));

-- The access report asks "which events name this patient", in either column.
CREATE INDEX audit_log_patient_ids_idx ON audit_log USING gin (patient_ids) WHERE cardinality(patient_ids) > 0;
