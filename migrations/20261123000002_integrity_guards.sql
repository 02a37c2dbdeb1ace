-- Integrity guards the RLS policies cannot express on their own: columns that identify a
-- row, tie it to a patient or organization, or say who wrote it never change after INSERT
-- (otherwise an UPDATE could move a row to another patient, launder authorship, or turn a
-- creator's one-time sight of a new patient into lasting access); break-glass grants may only
-- be revoked. These fire for every role, the owner included.

CREATE FUNCTION custos.freeze_columns() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text;
    old_row jsonb := to_jsonb(OLD);
    new_row jsonb := to_jsonb(NEW);
BEGIN
    FOREACH col IN ARRAY TG_ARGV LOOP
        IF old_row -> col IS DISTINCT FROM new_row -> col THEN
            RAISE EXCEPTION 'column %.% cannot be changed', TG_TABLE_NAME, col
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
    RETURN NEW;
END $$;

-- A patient's portal account is linked once (from an invite) and never re-pointed.
CREATE FUNCTION custos.set_once_user_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.user_id IS NOT NULL AND NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        RAISE EXCEPTION 'patients.user_id cannot be changed once set' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

-- Append-only rows whose sealed columns may still be re-encrypted by `custos keys rewrap`
-- (the maintenance connection, with custos.rewrap = 'on'): only the listed columns may change,
-- and never through the app role. Same rule as custos.messages_guard().
CREATE FUNCTION custos.append_only_but_rewrap() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text;
    old_rest jsonb := to_jsonb(OLD);
    new_rest jsonb := to_jsonb(NEW);
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('custos.rewrap', true) = 'on' AND current_user <> 'custos_app' THEN
        FOREACH col IN ARRAY TG_ARGV LOOP
            old_rest := old_rest - col;
            new_rest := new_rest - col;
        END LOOP;
        IF old_rest = new_rest THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- Grants are revoked, never extended, re-targeted or revived.
CREATE FUNCTION custos.break_glass_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL THEN
        RAISE EXCEPTION 'a break-glass grant can only be revoked, once' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER patients_frozen BEFORE UPDATE ON patients FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'created_by', 'created_at');
CREATE TRIGGER patients_user_once BEFORE UPDATE ON patients FOR EACH ROW
    EXECUTE FUNCTION custos.set_once_user_id();
CREATE TRIGGER patient_medical_info_frozen BEFORE UPDATE ON patient_medical_info FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'created_at');
CREATE TRIGGER allergies_frozen BEFORE UPDATE ON allergies FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'recorded_by', 'created_at');
CREATE TRIGGER medications_frozen BEFORE UPDATE ON medications FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'recorded_by', 'created_at');
CREATE TRIGGER medical_history_frozen BEFORE UPDATE ON medical_history FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'recorded_by', 'created_at');
-- What was prescribed is fixed at issue: a different drug, dose or amount is a new prescription.
CREATE TRIGGER prescriptions_frozen BEFORE UPDATE ON prescriptions FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'prescriber_id', 'medication', 'dose',
        'quantity', 'refills_allowed', 'issued_at', 'expires_at', 'created_at');
CREATE TRIGGER conversations_frozen BEFORE UPDATE ON conversations FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'opened_by', 'created_at');
CREATE TRIGGER care_team_members_frozen BEFORE UPDATE ON care_team_members FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'clinician_id', 'added_by', 'created_at');
CREATE TRIGGER symptoms_append_only BEFORE UPDATE OR DELETE ON symptoms FOR EACH ROW
    EXECUTE FUNCTION custos.reject_mutation();
CREATE TRIGGER attachments_append_only BEFORE UPDATE OR DELETE ON attachments FOR EACH ROW
    EXECUTE FUNCTION custos.append_only_but_rewrap('filename_enc', 'content_enc');
CREATE TRIGGER break_glass_grants_frozen BEFORE UPDATE ON break_glass_grants FOR EACH ROW
    EXECUTE FUNCTION custos.freeze_columns('id', 'org_id', 'patient_id', 'clinician_id', 'reason', 'granted_at', 'expires_at');
CREATE TRIGGER break_glass_grants_revoke_only BEFORE UPDATE ON break_glass_grants FOR EACH ROW
    EXECUTE FUNCTION custos.break_glass_revoke_only();
