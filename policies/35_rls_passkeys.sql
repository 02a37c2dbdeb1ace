-- Passkeys: who sees and changes which credential and ceremony row (migration
-- 20261202140001_passkeys.sql; the service is src/auth/passkeys.rs).
--   passkey_credentials  registered by their (staff) user; read by that user, the sign-in flow
--                        pinned to that user, and the org's managers; counters and flags are
--                        updated by the pinned sign-in flow; deleted by their user only.
--   passkey_ceremonies   register: the signed-in staff user who started it; second_factor: the
--                        sign-in flow pinned to that user; passwordless: the sign-in flow before
--                        anyone is known (rows with no org and no user, found by token hash).
-- The passwordless look-up (credential id → account) is custos.auth_user_by_passkey.

GRANT SELECT, INSERT, UPDATE, DELETE ON passkey_credentials TO custos_app;
GRANT SELECT, INSERT, DELETE ON passkey_ceremonies TO custos_app;

ALTER TABLE passkey_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkey_credentials FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS passkey_credentials_read ON passkey_credentials;
CREATE POLICY passkey_credentials_read ON passkey_credentials FOR SELECT TO custos_app
    USING (org_id = custos.org_id() AND (user_id = custos.user_id() OR custos.is_org_manager()));
DROP POLICY IF EXISTS passkey_credentials_create ON passkey_credentials;
CREATE POLICY passkey_credentials_create ON passkey_credentials FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND user_id = custos.user_id()
                AND custos.role() IN ('clinician', 'admin', 'auditor'));
DROP POLICY IF EXISTS passkey_credentials_update ON passkey_credentials;
CREATE POLICY passkey_credentials_update ON passkey_credentials FOR UPDATE TO custos_app
    USING (custos.role() = 'auth' AND org_id = custos.org_id() AND user_id = custos.user_id())
    WITH CHECK (custos.role() = 'auth' AND org_id = custos.org_id() AND user_id = custos.user_id());
DROP POLICY IF EXISTS passkey_credentials_delete ON passkey_credentials;
CREATE POLICY passkey_credentials_delete ON passkey_credentials FOR DELETE TO custos_app
    USING (org_id = custos.org_id() AND user_id = custos.user_id()
           AND custos.role() IN ('clinician', 'admin', 'auditor'));
-- An admin resets another user's passkeys (`POST /v1/admin/users/{id}/reset-passkeys`, like
-- reset-mfa): deletes them, never registers or changes one.
DROP POLICY IF EXISTS passkey_credentials_reset ON passkey_credentials;
CREATE POLICY passkey_credentials_reset ON passkey_credentials FOR DELETE TO custos_app
    USING (org_id = custos.org_id() AND custos.is_org_manager() AND user_id IS DISTINCT FROM custos.user_id());

ALTER TABLE passkey_ceremonies ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkey_ceremonies FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS passkey_ceremonies_register ON passkey_ceremonies;
CREATE POLICY passkey_ceremonies_register ON passkey_ceremonies FOR ALL TO custos_app
    USING (kind = 'register' AND org_id = custos.org_id() AND user_id = custos.user_id()
           AND custos.role() IN ('clinician', 'admin', 'auditor'))
    WITH CHECK (kind = 'register' AND org_id = custos.org_id() AND user_id = custos.user_id()
                AND custos.role() IN ('clinician', 'admin', 'auditor'));
DROP POLICY IF EXISTS passkey_ceremonies_second_factor ON passkey_ceremonies;
CREATE POLICY passkey_ceremonies_second_factor ON passkey_ceremonies FOR ALL TO custos_app
    USING (kind = 'second_factor' AND custos.role() = 'auth' AND org_id = custos.org_id() AND user_id = custos.user_id())
    WITH CHECK (kind = 'second_factor' AND custos.role() = 'auth' AND org_id = custos.org_id()
                AND user_id = custos.user_id());
DROP POLICY IF EXISTS passkey_ceremonies_passwordless ON passkey_ceremonies;
CREATE POLICY passkey_ceremonies_passwordless ON passkey_ceremonies FOR ALL TO custos_app
    USING (kind = 'passwordless' AND custos.role() = 'auth' AND org_id IS NULL AND user_id IS NULL)
    WITH CHECK (kind = 'passwordless' AND custos.role() = 'auth' AND org_id IS NULL AND user_id IS NULL);

-- passkey_credentials: what a credential is and whose it is never changes; the sign counter
-- only moves forward; a detected clone stays detected.
CREATE OR REPLACE FUNCTION custos.guard_passkey_credential_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'custos_app' OR custos.role() = 'system' THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.user_id <> OLD.user_id
       OR NEW.credential_id <> OLD.credential_id OR NEW.created_at <> OLD.created_at OR NEW.label <> OLD.label
       OR NEW.sign_count < OLD.sign_count
       OR (OLD.clone_detected_at IS NOT NULL AND NEW.clone_detected_at IS DISTINCT FROM OLD.clone_detected_at) THEN
        PERFORM custos.deny_column_change('passkey_credentials columns');
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS passkey_credentials_guard ON passkey_credentials;
CREATE TRIGGER passkey_credentials_guard BEFORE UPDATE ON passkey_credentials
    FOR EACH ROW EXECUTE FUNCTION custos.guard_passkey_credential_update();

-- Passwordless sign-in: the account a credential id belongs to (nothing else about it).
GRANT SELECT ON passkey_credentials TO custos_auth_lookup;
DROP POLICY IF EXISTS passkey_credentials_auth_lookup ON passkey_credentials;
CREATE POLICY passkey_credentials_auth_lookup ON passkey_credentials FOR SELECT TO custos_auth_lookup USING (true);
CREATE OR REPLACE FUNCTION custos.auth_user_by_passkey(p_credential_id bytea)
RETURNS TABLE (user_id uuid, org_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.user_id, c.org_id FROM public.passkey_credentials c WHERE c.credential_id = p_credential_id
$$;
ALTER FUNCTION custos.auth_user_by_passkey(bytea) OWNER TO custos_auth_lookup;
REVOKE ALL ON FUNCTION custos.auth_user_by_passkey(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.auth_user_by_passkey(bytea) TO custos_app;
