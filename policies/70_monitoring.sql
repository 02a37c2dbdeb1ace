-- Who reads and writes the privacy-monitoring tables (migrations/20261202120001_…).
--   custos_monitor  the engine (`custos monitor`, or inside `serve`): reads the ledger and the
--                   relationships that explain an access, writes only its own tables. It
--                   never reads clinical content: of patients it sees ids, the portal account
--                   and the two sealed fields it blind-indexes (family name, address).
--   app, admin      manages staff profiles, patient flags and working hours of their own
--                   organization (every change audited by the service, same transaction).
--   app, auditor    reads the alerts, their evidence, explanations and daily figures of their
--                   own organization and records decisions as themselves. Admins do not review:
--                   they manage the care teams that explain accesses, so they would be judging
--                   their own grants (segregation of duties, docs/privacy-monitoring.md).
-- Everything else is revoked by 20_grants.sql (REVOKE ALL ON ALL TABLES), so only what is
-- granted here exists.

-- custos_monitor is created with the other roles (policies/00_roles.sql).
GRANT USAGE ON SCHEMA public, custos TO custos_monitor;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM custos_monitor;

-- The engine: sources (read) and its own tables.
GRANT SELECT ON audit_log, organizations, care_team_members, break_glass_grants, conversations,
    staff_profiles, patient_flags, org_working_hours TO custos_monitor;
GRANT SELECT (id, org_id, role, status) ON users TO custos_monitor;
GRANT SELECT (id, org_id, user_id, family_name_enc, address_enc, updated_at) ON patients TO custos_monitor;
GRANT SELECT (id, org_id, patient_id, prescriber_id, issued_at) ON prescriptions TO custos_monitor;
GRANT SELECT, INSERT, UPDATE ON monitor_watermarks, monitor_patient_keys, monitor_user_state,
    monitor_daily_stats, monitor_alerts TO custos_monitor;
GRANT SELECT, INSERT ON monitor_explanations, monitor_alert_events TO custos_monitor;
GRANT SELECT ON monitor_decisions TO custos_monitor;

-- The app: admins' facts, auditors' review.
GRANT SELECT, INSERT, UPDATE ON staff_profiles, patient_flags, org_working_hours TO custos_app;
GRANT SELECT ON monitor_alerts, monitor_alert_events, monitor_explanations, monitor_daily_stats TO custos_app;
GRANT UPDATE (status) ON monitor_alerts TO custos_app;
GRANT SELECT, INSERT ON monitor_decisions TO custos_app;

-- Row-level security on every monitoring table. The monitor policies open all rows to the
-- engine role only; the app policies follow the claims.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['staff_profiles', 'patient_flags', 'org_working_hours', 'monitor_watermarks',
                             'monitor_patient_keys', 'monitor_user_state', 'monitor_explanations',
                             'monitor_daily_stats', 'monitor_alerts', 'monitor_alert_events', 'monitor_decisions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_monitor', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR ALL TO custos_monitor USING (true) WITH CHECK (true)', t || '_monitor', t);
    END LOOP;
END $$;

-- Sources the engine reads (their own policies are for the app role).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_log', 'organizations', 'users', 'patients', 'care_team_members',
                             'break_glass_grants', 'conversations', 'prescriptions'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_monitor_read', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO custos_monitor USING (true)', t || '_monitor_read', t);
    END LOOP;
END $$;

-- Admin-managed facts: an admin of the organization (or a maintenance command acting on it).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['staff_profiles', 'patient_flags', 'org_working_hours'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_admin', t);
        EXECUTE format($p$CREATE POLICY %I ON %I FOR ALL TO custos_app
            USING (org_id = custos.org_id() AND custos.role() IN ('admin', 'system'))
            WITH CHECK (org_id = custos.org_id() AND custos.role() IN ('admin', 'system')
                        AND (custos.role() = 'system' OR updated_by = custos.user_id()))$p$, t || '_admin', t);
    END LOOP;
END $$;

-- Review: an auditor of the organization.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['monitor_alerts', 'monitor_alert_events', 'monitor_daily_stats'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_review', t);
        EXECUTE format($p$CREATE POLICY %I ON %I FOR SELECT TO custos_app
            USING (org_id = custos.org_id() AND custos.role() = 'auditor')$p$, t || '_review', t);
    END LOOP;
END $$;
DROP POLICY IF EXISTS monitor_alerts_decide ON monitor_alerts;
CREATE POLICY monitor_alerts_decide ON monitor_alerts FOR UPDATE TO custos_app
    USING (org_id = custos.org_id() AND custos.role() = 'auditor')
    WITH CHECK (org_id = custos.org_id() AND custos.role() = 'auditor');
DROP POLICY IF EXISTS monitor_explanations_review ON monitor_explanations;
CREATE POLICY monitor_explanations_review ON monitor_explanations FOR SELECT TO custos_app
    USING (ledger_id = custos.org_id() AND custos.role() = 'auditor');
DROP POLICY IF EXISTS monitor_decisions_review ON monitor_decisions;
CREATE POLICY monitor_decisions_review ON monitor_decisions FOR SELECT TO custos_app
    USING (org_id = custos.org_id() AND custos.role() = 'auditor');
DROP POLICY IF EXISTS monitor_decisions_record ON monitor_decisions;
CREATE POLICY monitor_decisions_record ON monitor_decisions FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.role() = 'auditor' AND reviewer_id = custos.user_id());
