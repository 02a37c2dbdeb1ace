-- Lifting a clinician's break-glass daily limit (issue 19): an admin grants `extra` patients on
-- top of CUSTOS_BREAK_GLASS_DAILY_LIMIT for the next 24 hours. Rows are never changed or
-- removed (they are the record of who lifted whose limit); the ledger event says so too.
CREATE TABLE break_glass_allowances (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL,
    clinician_id  uuid NOT NULL,
    granted_by    uuid NOT NULL,
    extra         integer NOT NULL CHECK (extra BETWEEN 1 AND 100),
    granted_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    CHECK (expires_at > granted_at AND expires_at <= granted_at + interval '24 hours'),
    FOREIGN KEY (clinician_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (granted_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX break_glass_allowances_clinician_idx ON break_glass_allowances (clinician_id, org_id, expires_at);
CREATE INDEX break_glass_allowances_granted_by_idx ON break_glass_allowances (granted_by, org_id);
CREATE TRIGGER break_glass_allowances_append_only BEFORE UPDATE OR DELETE ON break_glass_allowances FOR EACH ROW
    EXECUTE FUNCTION custos.reject_mutation();
