-- Who sees which clinical row. Everything is confined to the caller's organization first.
--   patient    their own record and what hangs off it; may open conversations, write
--              messages, report symptoms and upload attachments on their own record;
--   clinician  patients on their care team or under a live break-glass grant of theirs;
--              writes clinical rows for those patients; only clinicians prescribe;
--   admin      patient demographics, care teams and break-glass grants of their org (to
--              manage and review them) — never clinical content;
--   auditor    nothing here (audit tables only).

ALTER TABLE patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE patients FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS patients_read ON patients;
CREATE POLICY patients_read ON patients FOR SELECT TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager()
                OR (custos.role() = 'patient' AND user_id = custos.user_id())
                OR (custos.role() = 'clinician'
                    -- the creator sees the row they entered *in this transaction* (created_at
                    -- is the transaction's now() and cannot be changed), just long enough to
                    -- put themselves on its care team; lasting access is the care team's
                    AND ((id = custos.patient_scope() AND custos.scope_granted())
                         OR (created_by = custos.user_id() AND created_at = now())
                         OR custos.clinician_has_access(id)))));
DROP POLICY IF EXISTS patients_create ON patients;
CREATE POLICY patients_create ON patients FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id()
                AND (custos.is_org_manager()
                     OR (custos.role() = 'clinician' AND created_by = custos.user_id())));
DROP POLICY IF EXISTS patients_update ON patients;
CREATE POLICY patients_update ON patients FOR UPDATE TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager()
                OR (custos.role() = 'clinician' AND custos.clinician_has_access(id))))
    WITH CHECK (org_id = custos.org_id());

ALTER TABLE care_team_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE care_team_members FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS care_team_read ON care_team_members;
CREATE POLICY care_team_read ON care_team_members FOR SELECT TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager()
                OR (custos.role() = 'clinician' AND clinician_id = custos.user_id())
                OR (custos.role() = 'patient' AND custos.is_own_patient(patient_id))));
DROP POLICY IF EXISTS care_team_manage ON care_team_members;
CREATE POLICY care_team_manage ON care_team_members FOR ALL TO custos_app
    USING (org_id = custos.org_id() AND custos.is_org_manager())
    WITH CHECK (org_id = custos.org_id() AND custos.is_org_manager());
DROP POLICY IF EXISTS care_team_creator ON care_team_members;
CREATE POLICY care_team_creator ON care_team_members FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.role() = 'clinician'
                AND clinician_id = custos.user_id()
                AND EXISTS (SELECT 1 FROM public.patients p
                            WHERE p.id = patient_id AND p.created_by = custos.user_id()
                              AND p.created_at = now()));

ALTER TABLE break_glass_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE break_glass_grants FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS break_glass_read ON break_glass_grants;
-- Auditors read grants (their reasons through an audited route); a patient reads the grants
-- into their own record (the access report shows who broke the glass, and why).
CREATE POLICY break_glass_read ON break_glass_grants FOR SELECT TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager() OR custos.role() = 'auditor'
                OR (custos.role() = 'clinician' AND clinician_id = custos.user_id())
                OR custos.is_own_patient(patient_id)));
DROP POLICY IF EXISTS break_glass_create ON break_glass_grants;
-- Granted now, for at most 24 hours (the application's window is shorter, e.g. 60 minutes):
-- a grant dated into the future could never expire.
CREATE POLICY break_glass_create ON break_glass_grants FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.role() = 'clinician'
                AND clinician_id = custos.user_id() AND revoked_at IS NULL
                AND granted_at BETWEEN now() - interval '1 minute' AND now() + interval '1 minute'
                AND expires_at <= now() + interval '24 hours');
DROP POLICY IF EXISTS break_glass_revoke ON break_glass_grants;
CREATE POLICY break_glass_revoke ON break_glass_grants FOR UPDATE TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager()
                OR (custos.role() = 'clinician' AND clinician_id = custos.user_id())))
    -- revocation only (a trigger keeps every other column as it was)
    WITH CHECK (org_id = custos.org_id() AND revoked_at IS NOT NULL);

-- Break-glass allowances (an admin lifting a clinician's daily limit): read by the
-- organization's managers and auditors and by the clinician concerned; written by admins only,
-- in their own name, starting now.
ALTER TABLE break_glass_allowances ENABLE ROW LEVEL SECURITY;
ALTER TABLE break_glass_allowances FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS break_glass_allowance_read ON break_glass_allowances;
CREATE POLICY break_glass_allowance_read ON break_glass_allowances FOR SELECT TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager() OR custos.role() = 'auditor'
                OR (custos.role() = 'clinician' AND clinician_id = custos.user_id())));
DROP POLICY IF EXISTS break_glass_allowance_create ON break_glass_allowances;
CREATE POLICY break_glass_allowance_create ON break_glass_allowances FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.role() = 'admin' AND granted_by = custos.user_id()
                AND granted_at BETWEEN now() - interval '1 minute' AND now() + interval '1 minute');

-- Clinician-authored chart tables: read by the patient and their clinicians, written by
-- their clinicians, in their own name (the author column must be the caller).
DO $$
DECLARE
    t text;
    author text;
BEGIN
    FOR t, author IN VALUES ('patient_medical_info', 'updated_by'), ('allergies', 'recorded_by'),
                            ('medications', 'recorded_by'), ('medical_history', 'recorded_by') LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_write', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR INSERT TO custos_app
            WITH CHECK (org_id = custos.org_id() AND custos.can_write_clinical(patient_id)
                        AND (custos.role() = ''system'' OR %I = custos.user_id()))', t || '_write', t, author);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_update', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR UPDATE TO custos_app
            USING (org_id = custos.org_id() AND custos.can_write_clinical(patient_id))
            WITH CHECK (org_id = custos.org_id() AND custos.can_write_clinical(patient_id))', t || '_update', t);
    END LOOP;
END $$;

-- Prescriptions: only a clinician with access prescribes, in their own name.
ALTER TABLE prescriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE prescriptions FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS prescriptions_write ON prescriptions;
CREATE POLICY prescriptions_write ON prescriptions FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.can_write_clinical(patient_id)
                AND (custos.role() = 'system' OR prescriber_id = custos.user_id()));
DROP POLICY IF EXISTS prescriptions_update ON prescriptions;
CREATE POLICY prescriptions_update ON prescriptions FOR UPDATE TO custos_app
    USING (org_id = custos.org_id() AND custos.can_write_clinical(patient_id))
    WITH CHECK (org_id = custos.org_id() AND custos.can_write_clinical(patient_id));

-- The case flow: patients open conversations and add to them; their clinicians too.
-- Symptoms and attachments are append-only (no UPDATE policy, and a trigger); a
-- conversation is opened in the caller's own name and updated (reply, close) by either side.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['conversations', 'symptoms', 'attachments'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_update', t);
    END LOOP;
END $$;
DROP POLICY IF EXISTS conversations_write ON conversations;
CREATE POLICY conversations_write ON conversations FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.can_read_clinical(patient_id)
                AND (custos.role() = 'system' OR opened_by = custos.user_id()));
CREATE POLICY conversations_update ON conversations FOR UPDATE TO custos_app
    USING (org_id = custos.org_id() AND custos.can_read_clinical(patient_id))
    WITH CHECK (org_id = custos.org_id() AND custos.can_read_clinical(patient_id));
DROP POLICY IF EXISTS symptoms_write ON symptoms;
CREATE POLICY symptoms_write ON symptoms FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.can_read_clinical(patient_id));
DROP POLICY IF EXISTS attachments_write ON attachments;
CREATE POLICY attachments_write ON attachments FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.can_read_clinical(patient_id)
                AND (custos.role() = 'system' OR uploaded_by = custos.user_id()));

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS messages_write ON messages;
CREATE POLICY messages_write ON messages FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.can_read_clinical(patient_id)
                AND (custos.role() = 'system' OR sender_id = custos.user_id()));

-- Reading clinical rows: everything above that hangs off a patient. Who may is
-- custos.can_read_clinical; *how often it is asked* depends on the transaction:
--   * scoped to one patient (custos.patient_scope(), set by requests under
--     /v1/patients/{id}/…): only that patient's rows are visible at all, and the access
--     question was answered when the transaction began (custos.scope_granted(), see
--     10_access_functions.sql); failing that it is an uncorrelated sub-select — an
--     InitPlan, asked once per statement and only when needed;
--   * unscoped (lists across patients, look-ups by a row's own id): asked per row.
-- The scope only narrows: it hides other patients' rows and grants nothing by itself.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['patient_medical_info', 'allergies', 'medications', 'medical_history', 'prescriptions',
                             'conversations', 'symptoms', 'attachments', 'messages'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_read', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO custos_app
            USING (org_id = custos.org_id()
                   AND CASE WHEN custos.patient_scope() IS NULL THEN custos.can_read_clinical(patient_id)
                            ELSE patient_id = custos.patient_scope()
                                 AND (custos.scope_granted()
                                      OR (SELECT custos.can_read_clinical(custos.patient_scope()))) END)',
            t || '_read', t);
    END LOOP;
END $$;
