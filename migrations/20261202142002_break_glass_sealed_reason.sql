-- Break-glass reasons sealed at rest (issue 19): operators' reasons often name the patient or
-- the condition, so the text is sealed like every other PHI column (AES-256-GCM, associated
-- data break_glass_grants.reason_enc.<id>), and the ledger carries only a commitment to it:
-- reason_mac = HMAC-SHA-256 under a key derived from the KEK ("break-glass-reason/v1", scoped
-- to the grant id), which an auditor reading the reason can check against the ledger entry.
-- Rows written before this migration keep their plain `reason`; new rows leave it NULL.
ALTER TABLE break_glass_grants ALTER COLUMN reason DROP NOT NULL;
ALTER TABLE break_glass_grants ADD COLUMN reason_enc bytea;
ALTER TABLE break_glass_grants ADD COLUMN reason_mac bytea;
ALTER TABLE break_glass_grants ADD CONSTRAINT break_glass_grants_reason_present
    CHECK ((reason IS NOT NULL AND reason_enc IS NULL AND reason_mac IS NULL)
           OR (reason IS NULL AND reason_enc IS NOT NULL AND length(reason_mac) = 32));
-- Counting a clinician's grants of the last 24 hours (the daily limit).
CREATE INDEX break_glass_grants_clinician_time_idx ON break_glass_grants (clinician_id, granted_at);

-- The commitment is frozen with the rest; the sealed text may be re-encrypted by
-- `custos keys rewrap` (custos.rewrap = 'on', not as the app), which changes nothing else.
DROP TRIGGER break_glass_grants_frozen ON break_glass_grants;
CREATE TRIGGER break_glass_grants_frozen BEFORE UPDATE ON break_glass_grants FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'clinician_id', 'reason', 'reason_mac',
                                           'granted_at', 'expires_at');
CREATE OR REPLACE FUNCTION custos.break_glass_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('custos.rewrap', true) = 'on' AND current_user <> 'custos_app'
       AND NEW.revoked_at IS NOT DISTINCT FROM OLD.revoked_at THEN
        RETURN NEW;
    END IF;
    IF OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL THEN
        RAISE EXCEPTION 'a break-glass grant can only be revoked, once' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
