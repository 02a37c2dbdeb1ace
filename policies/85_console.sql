-- Two narrow look-ups for the console (src/console/), each a SECURITY DEFINER function owned
-- by a NOLOGIN role that is no superuser and has no BYPASSRLS, with search_path pinned, that
-- answers from the caller's claims (organization, role) and nothing else:
--
--   custos.patient_by_mrn(bidx)  the patient (and their portal account) with this MRN blind
--                                index in the caller's organization, ids only — for auditors,
--                                who may not read the patients table, and admins. Owned by
--                                custos_invite_redeemer, which already reads patients for
--                                registration (policies/30_rls_identity.sql): no new privilege.
--                                The server records every look-up (a query about a patient).
--   custos.patient_of_org(id)    the same by patient id, for auditors only: whether the patient
--                                is of the caller's organization, and their portal account —
--                                the API's access report (`GET /v1/patients/{id}/access-report`),
--                                which auditors read from the ledger. Same owner, ids only.
--   custos.rewrap_progress()     how many sealed values of the caller's organization are under
--                                each data-key version, for an admin's health page. Owned by
--                                custos_rewrapper, which reads the sealed columns anyway
--                                (policies/80_rewrap.sql); here it also reads org_id, to count
--                                one organization only. Counts, never a value.

CREATE OR REPLACE FUNCTION custos.patient_by_mrn(p_mrn_bidx bytea)
RETURNS TABLE (patient_id uuid, account_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.id, p.user_id FROM public.patients p
    WHERE p.mrn_bidx = p_mrn_bidx AND p.org_id = custos.org_id()
      AND custos.role() IN ('auditor', 'admin')
$$;
ALTER FUNCTION custos.patient_by_mrn(bytea) OWNER TO custos_invite_redeemer;
REVOKE ALL ON FUNCTION custos.patient_by_mrn(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.patient_by_mrn(bytea) TO custos_app;

CREATE OR REPLACE FUNCTION custos.patient_of_org(p_patient uuid)
RETURNS TABLE (patient_id uuid, account_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.id, p.user_id FROM public.patients p
    WHERE p.id = p_patient AND p.org_id = custos.org_id()
      AND custos.role() = 'auditor'
$$;
ALTER FUNCTION custos.patient_of_org(uuid) OWNER TO custos_invite_redeemer;
REVOKE ALL ON FUNCTION custos.patient_of_org(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.patient_of_org(uuid) TO custos_app;

-- The columns custos_rewrapper may change are exactly the sealed columns (80_rewrap.sql);
-- their tables' org_id, to count per organization.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT DISTINCT c.relname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
               AND pg_catalog.has_column_privilege('custos_rewrapper', c.oid, a.attnum, 'UPDATE') LOOP
        EXECUTE format('GRANT SELECT (org_id) ON public.%I TO custos_rewrapper', t);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION custos.rewrap_progress()
RETURNS TABLE (version integer, sealed bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    o uuid := custos.org_id();
BEGIN
    IF custos.role() IS DISTINCT FROM 'admin' OR o IS NULL THEN
        RETURN;
    END IF;
    FOR r IN SELECT c.relname AS tbl, a.attname AS col
             FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0
               AND NOT a.attisdropped
               AND pg_catalog.has_column_privilege('custos_rewrapper', c.oid, a.attnum, 'UPDATE')
             ORDER BY 1, 2 LOOP
        -- The 4-byte big-endian version header of a sealed value (src/cli/keys.rs, VERSION_SQL).
        RETURN QUERY EXECUTE format(
            'SELECT (''x'' || encode(substring(%1$I from 1 for 4), ''hex''))::bit(32)::int, count(*) '
            'FROM public.%2$I WHERE org_id = $1 AND %1$I IS NOT NULL GROUP BY 1', r.col, r.tbl) USING o;
    END LOOP;
END $$;
ALTER FUNCTION custos.rewrap_progress() OWNER TO custos_rewrapper;
REVOKE ALL ON FUNCTION custos.rewrap_progress() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.rewrap_progress() TO custos_app;

-- The break-glass grants page (src/monitoring/grants.rs) says whether each grant was reviewed:
-- admins read the review queue's break-glass alerts (status and evidence entries, no note, no
-- other detector); auditors read every alert already (70_monitoring.sql).
DROP POLICY IF EXISTS monitor_alerts_break_glass_admin ON monitor_alerts;
CREATE POLICY monitor_alerts_break_glass_admin ON monitor_alerts FOR SELECT TO custos_app
    USING (org_id = custos.org_id() AND custos.role() = 'admin' AND detector = 'break_glass');
DROP POLICY IF EXISTS monitor_alert_events_break_glass_admin ON monitor_alert_events;
CREATE POLICY monitor_alert_events_break_glass_admin ON monitor_alert_events FOR SELECT TO custos_app
    USING (org_id = custos.org_id() AND custos.role() = 'admin'
           AND EXISTS (SELECT 1 FROM public.monitor_alerts a
                       WHERE a.id = alert_id AND a.org_id = custos.org_id() AND a.detector = 'break_glass'));
