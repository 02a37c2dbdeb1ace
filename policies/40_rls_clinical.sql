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
                    -- the creator keeps sight of the demographics row they just entered, so
                    -- they can put themselves on its care team in the same transaction
                    AND (created_by = custos.user_id() OR custos.clinician_has_access(id)))));
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
                            WHERE p.id = patient_id AND p.created_by = custos.user_id()));

ALTER TABLE break_glass_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE break_glass_grants FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS break_glass_read ON break_glass_grants;
CREATE POLICY break_glass_read ON break_glass_grants FOR SELECT TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager()
                OR (custos.role() = 'clinician' AND clinician_id = custos.user_id())));
DROP POLICY IF EXISTS break_glass_create ON break_glass_grants;
CREATE POLICY break_glass_create ON break_glass_grants FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.role() = 'clinician'
                AND clinician_id = custos.user_id());
DROP POLICY IF EXISTS break_glass_revoke ON break_glass_grants;
CREATE POLICY break_glass_revoke ON break_glass_grants FOR UPDATE TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager()
                OR (custos.role() = 'clinician' AND clinician_id = custos.user_id())))
    WITH CHECK (org_id = custos.org_id());

-- Clinician-authored chart tables: read by the patient and their clinicians, written by
-- their clinicians.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['patient_medical_info', 'allergies', 'medications', 'medical_history'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_read', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO custos_app
            USING (org_id = custos.org_id() AND custos.can_read_clinical(patient_id))', t || '_read', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_write', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR INSERT TO custos_app
            WITH CHECK (org_id = custos.org_id() AND custos.can_write_clinical(patient_id))', t || '_write', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_update', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR UPDATE TO custos_app
            USING (org_id = custos.org_id() AND custos.can_write_clinical(patient_id))
            WITH CHECK (org_id = custos.org_id() AND custos.can_write_clinical(patient_id))', t || '_update', t);
    END LOOP;
END $$;

-- Prescriptions: only a clinician with access prescribes, in their own name.
ALTER TABLE prescriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE prescriptions FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS prescriptions_read ON prescriptions;
CREATE POLICY prescriptions_read ON prescriptions FOR SELECT TO custos_app
    USING (org_id = custos.org_id() AND custos.can_read_clinical(patient_id));
DROP POLICY IF EXISTS prescriptions_write ON prescriptions;
CREATE POLICY prescriptions_write ON prescriptions FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.can_write_clinical(patient_id)
                AND (custos.role() = 'system' OR prescriber_id = custos.user_id()));
DROP POLICY IF EXISTS prescriptions_update ON prescriptions;
CREATE POLICY prescriptions_update ON prescriptions FOR UPDATE TO custos_app
    USING (org_id = custos.org_id() AND custos.can_write_clinical(patient_id))
    WITH CHECK (org_id = custos.org_id() AND custos.can_write_clinical(patient_id));

-- The case flow: patients open conversations and add to them; their clinicians too.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['conversations', 'symptoms', 'attachments'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_read', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO custos_app
            USING (org_id = custos.org_id() AND custos.can_read_clinical(patient_id))', t || '_read', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_write', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR INSERT TO custos_app
            WITH CHECK (org_id = custos.org_id() AND custos.can_read_clinical(patient_id))', t || '_write', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_update', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR UPDATE TO custos_app
            USING (org_id = custos.org_id() AND custos.can_read_clinical(patient_id))
            WITH CHECK (org_id = custos.org_id() AND custos.can_read_clinical(patient_id))', t || '_update', t);
    END LOOP;
END $$;

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS messages_read ON messages;
CREATE POLICY messages_read ON messages FOR SELECT TO custos_app
    USING (org_id = custos.org_id() AND custos.can_read_clinical(patient_id));
DROP POLICY IF EXISTS messages_write ON messages;
CREATE POLICY messages_write ON messages FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.can_read_clinical(patient_id)
                AND (custos.role() = 'system' OR sender_id = custos.user_id()));
