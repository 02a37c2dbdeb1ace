-- Access predicates shared by the policies. They are plpgsql (never inlined): being opaque to
-- the rewriter lets policies of different tables refer to each other without "infinite
-- recursion detected in policy".
--
-- They run for every row a policy checks, so they are built to be cheap: SECURITY DEFINER,
-- owned by the NOLOGIN role custos_access_check, which may read only the columns an access
-- decision needs (care-team membership, break-glass grants, a patient's account link) through
-- the `USING (true)` policies below — no superuser, no BYPASSRLS, and no nested RLS
-- evaluation per row. Each function filters by the caller's claims itself (user, org, role),
-- so it answers only "may *the caller* reach this patient". search_path is pinned and every
-- table is schema-qualified, so a caller cannot redirect a name.
GRANT USAGE ON SCHEMA public, custos TO custos_access_check;
GRANT SELECT (org_id, patient_id, clinician_id) ON care_team_members TO custos_access_check;
GRANT SELECT (org_id, patient_id, clinician_id, revoked_at, expires_at) ON break_glass_grants TO custos_access_check;
GRANT SELECT (id, org_id, user_id) ON patients TO custos_access_check;
DROP POLICY IF EXISTS care_team_access_check ON care_team_members;
CREATE POLICY care_team_access_check ON care_team_members FOR SELECT TO custos_access_check USING (true);
DROP POLICY IF EXISTS break_glass_access_check ON break_glass_grants;
CREATE POLICY break_glass_access_check ON break_glass_grants FOR SELECT TO custos_access_check USING (true);
DROP POLICY IF EXISTS patients_access_check ON patients;
CREATE POLICY patients_access_check ON patients FOR SELECT TO custos_access_check USING (true);

-- The one patient the transaction is scoped to, if any (src/db/tx.rs, `Claims::patient_scope`).
CREATE OR REPLACE FUNCTION custos.patient_scope() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('custos.patient_id', true), '')::uuid $$;

-- The calling patient's own record.
CREATE OR REPLACE FUNCTION custos.is_own_patient(pid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN custos.role() = 'patient'
        AND EXISTS (SELECT 1 FROM public.patients p
                    WHERE p.id = pid AND p.org_id = custos.org_id() AND p.user_id = custos.user_id());
END $$;

-- The calling patient's own record ids (one, or none), for matching a list of patients at once
-- (audit_log.patient_ids): asked once per statement as an uncorrelated sub-select.
CREATE OR REPLACE FUNCTION custos.own_patient_ids() RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF custos.role() IS DISTINCT FROM 'patient' THEN
        RETURN '{}';
    END IF;
    RETURN ARRAY(SELECT p.id FROM public.patients p
                 WHERE p.org_id = custos.org_id() AND p.user_id = custos.user_id());
END $$;

-- The calling clinician is on the patient's care team, or holds a live break-glass grant.
CREATE OR REPLACE FUNCTION custos.clinician_has_access(pid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN custos.role() = 'clinician'
        AND (EXISTS (SELECT 1 FROM public.care_team_members c
                     WHERE c.patient_id = pid AND c.clinician_id = custos.user_id() AND c.org_id = custos.org_id())
             OR EXISTS (SELECT 1 FROM public.break_glass_grants g
                        WHERE g.patient_id = pid AND g.clinician_id = custos.user_id() AND g.org_id = custos.org_id()
                          AND g.revoked_at IS NULL AND g.expires_at > now()));
END $$;

-- Who may read a patient's clinical rows (org is checked by the policy itself).
-- Admins and auditors are deliberately absent: minimum necessary, no clinical content.
-- One function call per row, so the clinician case is written out rather than nested.
CREATE OR REPLACE FUNCTION custos.can_read_clinical(pid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r text := custos.role();
    u uuid := custos.user_id();
    o uuid := custos.org_id();
BEGIN
    IF r = 'clinician' THEN
        RETURN EXISTS (SELECT 1 FROM public.care_team_members c
                       WHERE c.patient_id = pid AND c.clinician_id = u AND c.org_id = o)
            OR EXISTS (SELECT 1 FROM public.break_glass_grants g
                       WHERE g.patient_id = pid AND g.clinician_id = u AND g.org_id = o
                         AND g.revoked_at IS NULL AND g.expires_at > now());
    ELSIF r = 'patient' THEN
        RETURN EXISTS (SELECT 1 FROM public.patients p WHERE p.id = pid AND p.org_id = o AND p.user_id = u);
    END IF;
    RETURN r IS NOT DISTINCT FROM 'system';
END $$;

-- Who may write clinician-authored clinical rows (allergies, history, prescriptions, ...).
CREATE OR REPLACE FUNCTION custos.can_write_clinical(pid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN CASE custos.role()
        WHEN 'clinician' THEN custos.clinician_has_access(pid)
        WHEN 'system' THEN true
        ELSE false
    END;
END $$;

ALTER FUNCTION custos.is_own_patient(uuid) OWNER TO custos_access_check;
ALTER FUNCTION custos.own_patient_ids() OWNER TO custos_access_check;
REVOKE ALL ON FUNCTION custos.own_patient_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.own_patient_ids() TO custos_app;
ALTER FUNCTION custos.clinician_has_access(uuid) OWNER TO custos_access_check;
ALTER FUNCTION custos.can_read_clinical(uuid) OWNER TO custos_access_check;
ALTER FUNCTION custos.can_write_clinical(uuid) OWNER TO custos_access_check;
REVOKE ALL ON FUNCTION custos.is_own_patient(uuid), custos.clinician_has_access(uuid),
    custos.can_read_clinical(uuid), custos.can_write_clinical(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.is_own_patient(uuid), custos.clinician_has_access(uuid),
    custos.can_read_clinical(uuid), custos.can_write_clinical(uuid) TO custos_app;

-- A transaction scoped to one patient asks the access question once, when it begins
-- (src/db/tx.rs calls custos.enter_patient_scope() right after setting the claims), instead of
-- once per statement. A positive answer is remembered, transaction-locally, as the claims it
-- was given for (patient/user/org/role); custos.scope_granted() is true only while the claims
-- are still exactly those, so changing any claim in the transaction drops back to asking
-- again. Only "yes" is remembered: a grant made later in the same transaction is still seen.
-- The remembered answer is a GUC, which custos_app could set itself — exactly as it sets the
-- claims it is trusted to assert (see docs/architecture.md, "Claims"); the database still
-- makes the decision, and a scope set for a patient the caller may not reach yields nothing.
CREATE OR REPLACE FUNCTION custos.scope_claims() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT concat_ws('/', current_setting('custos.patient_id', true), current_setting('custos.user_id', true),
                    current_setting('custos.org_id', true), current_setting('custos.role', true)) $$;

CREATE OR REPLACE FUNCTION custos.scope_granted() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(nullif(current_setting('custos.scope_grant', true), '') = custos.scope_claims(), false) $$;

CREATE OR REPLACE FUNCTION custos.enter_patient_scope() RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ok boolean := custos.patient_scope() IS NOT NULL AND custos.can_read_clinical(custos.patient_scope());
BEGIN
    PERFORM set_config('custos.scope_grant', CASE WHEN ok THEN custos.scope_claims() ELSE '' END, true);
    RETURN ok;
END $$;
ALTER FUNCTION custos.enter_patient_scope() OWNER TO custos_access_check;
REVOKE ALL ON FUNCTION custos.enter_patient_scope() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.enter_patient_scope() TO custos_app;

-- Staff that administer an organization (users, care teams, demographics).
CREATE OR REPLACE FUNCTION custos.is_org_manager() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT coalesce(custos.role() IN ('admin', 'system'), false) $$;
