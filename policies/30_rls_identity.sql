-- Who sees which identity row. Claims: custos.user_id(), custos.org_id(), custos.role().
-- Roles beyond the four user roles are service contexts set by the server itself:
--   'auth'    pre-authentication work (find a user by email blind index, check a session,
--             rotate a refresh token, record a failed login) — it has no user yet, so it is
--             the one context that crosses organizations, and only on identity tables;
--   'system'  maintenance commands (bootstrap, import, key rewrap), confined to one org.
-- No claims at all: no rows.

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS organizations_read ON organizations;
CREATE POLICY organizations_read ON organizations FOR SELECT TO custos_app
    USING (id = custos.org_id() OR custos.role() = 'auth');
DROP POLICY IF EXISTS organizations_create ON organizations;
CREATE POLICY organizations_create ON organizations FOR INSERT TO custos_app
    WITH CHECK (custos.role() = 'system' AND id = custos.org_id());
DROP POLICY IF EXISTS organizations_update ON organizations;
CREATE POLICY organizations_update ON organizations FOR UPDATE TO custos_app
    USING (id = custos.org_id() AND custos.is_org_manager());
DROP POLICY IF EXISTS organizations_sequencer ON organizations;
CREATE POLICY organizations_sequencer ON organizations FOR SELECT TO custos_sequencer USING (true);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS users_read ON users;
CREATE POLICY users_read ON users FOR SELECT TO custos_app
    USING (custos.role() = 'auth'
           OR (org_id = custos.org_id() AND (id = custos.user_id() OR custos.is_org_manager())));
DROP POLICY IF EXISTS users_create ON users;
CREATE POLICY users_create ON users FOR INSERT TO custos_app
    WITH CHECK ((org_id = custos.org_id() AND custos.is_org_manager())
                -- self-registration from a patient invite creates patient accounts only
                OR (custos.role() = 'auth' AND role = 'patient'));
DROP POLICY IF EXISTS users_update ON users;
CREATE POLICY users_update ON users FOR UPDATE TO custos_app
    USING (custos.role() = 'auth'
           OR (org_id = custos.org_id() AND (id = custos.user_id() OR custos.is_org_manager())));

-- Credentials and sessions: the user's own, their org's managers, and the auth context.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mfa_credentials', 'recovery_codes', 'sessions', 'mfa_challenges'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_owner', t);
        EXECUTE format($p$CREATE POLICY %I ON %I FOR ALL TO custos_app
            USING (custos.role() = 'auth'
                   OR (org_id = custos.org_id() AND (user_id = custos.user_id() OR custos.is_org_manager())))
            WITH CHECK (custos.role() = 'auth'
                   OR (org_id = custos.org_id() AND (user_id = custos.user_id() OR custos.is_org_manager())))$p$,
            t || '_owner', t);
    END LOOP;
END $$;

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS refresh_tokens_owner ON refresh_tokens;
CREATE POLICY refresh_tokens_owner ON refresh_tokens FOR ALL TO custos_app
    USING (custos.role() = 'auth'
           OR (org_id = custos.org_id()
               AND (custos.is_org_manager()
                    OR EXISTS (SELECT 1 FROM public.sessions s
                               WHERE s.id = session_id AND s.user_id = custos.user_id()))))
    WITH CHECK (custos.role() = 'auth'
           OR (org_id = custos.org_id()
               AND (custos.is_org_manager()
                    OR EXISTS (SELECT 1 FROM public.sessions s
                               WHERE s.id = session_id AND s.user_id = custos.user_id()))));

-- Invites: issued by managers or by a clinician with access to the patient; redeemed in the
-- auth context (the registering patient has no account yet).
ALTER TABLE patient_invites ENABLE ROW LEVEL SECURITY;
ALTER TABLE patient_invites FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS patient_invites_access ON patient_invites;
CREATE POLICY patient_invites_access ON patient_invites FOR ALL TO custos_app
    USING (custos.role() = 'auth'
           OR (org_id = custos.org_id()
               AND (custos.is_org_manager()
                    OR (custos.role() = 'clinician' AND custos.clinician_has_access(patient_id)))))
    WITH CHECK (org_id = custos.org_id()
               AND (custos.is_org_manager()
                    OR (custos.role() = 'clinician' AND custos.clinician_has_access(patient_id)
                        AND created_by = custos.user_id())));
DROP POLICY IF EXISTS patient_invites_redeem ON patient_invites;
CREATE POLICY patient_invites_redeem ON patient_invites FOR UPDATE TO custos_app
    USING (custos.role() = 'auth') WITH CHECK (custos.role() = 'auth');

-- Data keys carry no PHI and are needed before any claims exist (start-up); only
-- maintenance commands add or retire them.
ALTER TABLE encryption_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE encryption_keys FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS encryption_keys_read ON encryption_keys;
CREATE POLICY encryption_keys_read ON encryption_keys FOR SELECT TO custos_app USING (true);
DROP POLICY IF EXISTS encryption_keys_manage ON encryption_keys;
CREATE POLICY encryption_keys_manage ON encryption_keys FOR ALL TO custos_app
    USING (custos.role() = 'system') WITH CHECK (custos.role() = 'system');

ALTER TABLE legacy_id_map ENABLE ROW LEVEL SECURITY;
ALTER TABLE legacy_id_map FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS legacy_id_map_system ON legacy_id_map;
CREATE POLICY legacy_id_map_system ON legacy_id_map FOR ALL TO custos_app
    USING (org_id = custos.org_id() AND custos.role() = 'system')
    WITH CHECK (org_id = custos.org_id() AND custos.role() = 'system');
