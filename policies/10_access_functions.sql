-- Access predicates shared by the policies. They are plpgsql (never inlined) and SECURITY
-- INVOKER: the tables they read are themselves under RLS for the calling role, which is what
-- keeps them honest, and being opaque to the rewriter lets policies of different tables refer
-- to each other without "infinite recursion detected in policy".
-- Tables are schema-qualified so a caller's search_path cannot redirect them.

-- The calling patient's own record.
CREATE OR REPLACE FUNCTION custos.is_own_patient(pid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM public.patients p
                   WHERE p.id = pid AND p.user_id = custos.user_id());
END $$;

-- The calling clinician is on the patient's care team, or holds a live break-glass grant.
CREATE OR REPLACE FUNCTION custos.clinician_has_access(pid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM public.care_team_members c
                   WHERE c.patient_id = pid AND c.clinician_id = custos.user_id())
        OR EXISTS (SELECT 1 FROM public.break_glass_grants g
                   WHERE g.patient_id = pid AND g.clinician_id = custos.user_id()
                     AND g.revoked_at IS NULL AND g.expires_at > now());
END $$;

-- Who may read a patient's clinical rows (org is checked by the policy itself).
-- Admins and auditors are deliberately absent: minimum necessary, no clinical content.
CREATE OR REPLACE FUNCTION custos.can_read_clinical(pid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN CASE custos.role()
        WHEN 'patient' THEN custos.is_own_patient(pid)
        WHEN 'clinician' THEN custos.clinician_has_access(pid)
        WHEN 'system' THEN true
        ELSE false
    END;
END $$;

-- Who may write clinician-authored clinical rows (allergies, history, prescriptions, ...).
CREATE OR REPLACE FUNCTION custos.can_write_clinical(pid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN CASE custos.role()
        WHEN 'clinician' THEN custos.clinician_has_access(pid)
        WHEN 'system' THEN true
        ELSE false
    END;
END $$;

-- Staff that administer an organization (users, care teams, demographics).
CREATE OR REPLACE FUNCTION custos.is_org_manager() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT coalesce(custos.role() IN ('admin', 'system'), false) $$;
