-- Who sees and changes which identity row. Claims: custos.user_id(), custos.org_id(), custos.role().
-- Roles beyond the four user roles are service contexts set by the server itself:
--   'auth'    the sign-in flows (login, MFA step, refresh, session start). It is PINNED to one
--             account: the server first resolves the account through a narrow SECURITY DEFINER
--             look-up below (by email blind index, refresh-token hash or MFA-challenge hash),
--             then sets role 'auth' + that user_id + org_id, and sees only that account's rows.
--             Without a user (unknown email, unknown token) it sees nothing and can only write
--             to the system ledger (policies/50_rls_audit.sql).
--   'system'  maintenance commands (bootstrap, import, key rewrap), confined to one org.
-- No claims at all: no rows.
--
-- Row policies say WHICH rows; the BEFORE UPDATE guards at the end say WHICH COLUMNS may change
-- and how (session lifetimes, MFA flags, counters and locks only move in the safe direction).

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS organizations_read ON organizations;
CREATE POLICY organizations_read ON organizations FOR SELECT TO custos_app
    USING (id = custos.org_id());
DROP POLICY IF EXISTS organizations_create ON organizations;
CREATE POLICY organizations_create ON organizations FOR INSERT TO custos_app
    WITH CHECK (custos.role() = 'system' AND id = custos.org_id());
DROP POLICY IF EXISTS organizations_update ON organizations;
CREATE POLICY organizations_update ON organizations FOR UPDATE TO custos_app
    USING (id = custos.org_id() AND custos.is_org_manager());
DROP POLICY IF EXISTS organizations_sequencer ON organizations;
CREATE POLICY organizations_sequencer ON organizations FOR SELECT TO custos_sequencer USING (true);

-- Users: oneself (incl. the pinned auth context) and the org's managers. Patient accounts are
-- created only by custos.redeem_invite (below), never by a plain INSERT of the app.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS users_read ON users;
CREATE POLICY users_read ON users FOR SELECT TO custos_app
    USING (org_id = custos.org_id() AND (id = custos.user_id() OR custos.is_org_manager()));
DROP POLICY IF EXISTS users_create ON users;
CREATE POLICY users_create ON users FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND custos.is_org_manager());
DROP POLICY IF EXISTS users_update ON users;
CREATE POLICY users_update ON users FOR UPDATE TO custos_app
    USING (org_id = custos.org_id() AND (id = custos.user_id() OR custos.is_org_manager()))
    WITH CHECK (org_id = custos.org_id() AND (id = custos.user_id() OR custos.is_org_manager()));
-- consecutive_failures came after policies/20_grants.sql was written; identity grants live here.
GRANT UPDATE (consecutive_failures) ON users TO custos_app;

-- Sessions: created only by the sign-in flows; read/revoked by their user and the org's managers.
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS sessions_owner ON sessions;
DROP POLICY IF EXISTS sessions_read ON sessions;
CREATE POLICY sessions_read ON sessions FOR SELECT TO custos_app
    USING (org_id = custos.org_id() AND (user_id = custos.user_id() OR custos.is_org_manager()));
DROP POLICY IF EXISTS sessions_create ON sessions;
CREATE POLICY sessions_create ON sessions FOR INSERT TO custos_app
    WITH CHECK (custos.role() = 'auth' AND org_id = custos.org_id() AND user_id = custos.user_id());
DROP POLICY IF EXISTS sessions_update ON sessions;
CREATE POLICY sessions_update ON sessions FOR UPDATE TO custos_app
    USING (org_id = custos.org_id() AND (user_id = custos.user_id() OR custos.is_org_manager()))
    WITH CHECK (org_id = custos.org_id() AND (user_id = custos.user_id() OR custos.is_org_manager()));

-- The per-request session check is a prepared statement pipelined with the claims
-- (src/auth/extractor.rs); the function it replaced goes.
DROP FUNCTION IF EXISTS custos.live_session(uuid, uuid, timestamptz, timestamptz, timestamptz);

-- On the clinical API the check travels in the request transaction's first pipeline, ahead of
-- the request's own statements, and must stop them when it fails: it calls this (only then)
-- to abort the pipeline. SQLSTATE 28000 (invalid_authorization_specification) is what the
-- server looks for; it carries nothing about the session.
CREATE OR REPLACE FUNCTION custos.refuse_session() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'session not admitted' USING ERRCODE = 'invalid_authorization_specification';
END $$;
REVOKE ALL ON FUNCTION custos.refuse_session() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.refuse_session() TO custos_app;

-- MFA challenges: the sign-in flow of that one user only.
ALTER TABLE mfa_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_challenges FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS mfa_challenges_owner ON mfa_challenges;
CREATE POLICY mfa_challenges_owner ON mfa_challenges FOR ALL TO custos_app
    USING (custos.role() = 'auth' AND org_id = custos.org_id() AND user_id = custos.user_id())
    WITH CHECK (custos.role() = 'auth' AND org_id = custos.org_id() AND user_id = custos.user_id());

-- MFA credentials and recovery codes: enrolled by their user; managers see them (mfa_enabled)
-- and may delete another user's (reset-mfa), never write them.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mfa_credentials', 'recovery_codes'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_owner', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_read', t);
        EXECUTE format($p$CREATE POLICY %I ON %I FOR SELECT TO custos_app
            USING (org_id = custos.org_id() AND (user_id = custos.user_id() OR custos.is_org_manager()))$p$,
            t || '_read', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_create', t);
        EXECUTE format($p$CREATE POLICY %I ON %I FOR INSERT TO custos_app
            WITH CHECK (org_id = custos.org_id() AND user_id = custos.user_id()
                        AND custos.role() IN ('patient', 'clinician', 'admin', 'auditor'))$p$,
            t || '_create', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_update', t);
        EXECUTE format($p$CREATE POLICY %I ON %I FOR UPDATE TO custos_app
            USING (org_id = custos.org_id() AND user_id = custos.user_id())
            WITH CHECK (org_id = custos.org_id() AND user_id = custos.user_id())$p$,
            t || '_update', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_delete', t);
        EXECUTE format($p$CREATE POLICY %I ON %I FOR DELETE TO custos_app
            USING (org_id = custos.org_id()
                   AND ((user_id = custos.user_id() AND %L = 'recovery_codes')
                        OR (custos.is_org_manager() AND user_id IS DISTINCT FROM custos.user_id())))$p$,
            t || '_delete', t, t);
    END LOOP;
END $$;

-- Refresh tokens: read by the session's user and the org's managers; issued and rotated only
-- by the sign-in flows of the session's user.
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS refresh_tokens_owner ON refresh_tokens;
DROP POLICY IF EXISTS refresh_tokens_read ON refresh_tokens;
CREATE POLICY refresh_tokens_read ON refresh_tokens FOR SELECT TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager()
                OR EXISTS (SELECT 1 FROM public.sessions s
                           WHERE s.id = session_id AND s.user_id = custos.user_id())));
DROP POLICY IF EXISTS refresh_tokens_create ON refresh_tokens;
CREATE POLICY refresh_tokens_create ON refresh_tokens FOR INSERT TO custos_app
    WITH CHECK (custos.role() = 'auth' AND org_id = custos.org_id()
                AND EXISTS (SELECT 1 FROM public.sessions s
                            WHERE s.id = session_id AND s.user_id = custos.user_id()));
DROP POLICY IF EXISTS refresh_tokens_rotate ON refresh_tokens;
CREATE POLICY refresh_tokens_rotate ON refresh_tokens FOR UPDATE TO custos_app
    USING (custos.role() = 'auth' AND org_id = custos.org_id()
           AND EXISTS (SELECT 1 FROM public.sessions s
                       WHERE s.id = session_id AND s.user_id = custos.user_id()))
    WITH CHECK (custos.role() = 'auth' AND org_id = custos.org_id());

-- Invites: issued (in one's own name) by managers or by a clinician with access to the patient.
-- The app never updates them: redemption and failed attempts go through the functions below.
ALTER TABLE patient_invites ENABLE ROW LEVEL SECURITY;
ALTER TABLE patient_invites FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS patient_invites_access ON patient_invites;
DROP POLICY IF EXISTS patient_invites_redeem ON patient_invites;
DROP POLICY IF EXISTS patient_invites_read ON patient_invites;
CREATE POLICY patient_invites_read ON patient_invites FOR SELECT TO custos_app
    USING (org_id = custos.org_id()
           AND (custos.is_org_manager()
                OR (custos.role() = 'clinician' AND custos.clinician_has_access(patient_id))));
DROP POLICY IF EXISTS patient_invites_issue ON patient_invites;
CREATE POLICY patient_invites_issue ON patient_invites FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id()
                AND (custos.role() = 'system' OR created_by = custos.user_id())
                AND (custos.is_org_manager()
                     OR (custos.role() = 'clinician' AND custos.clinician_has_access(patient_id))));

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

-- ---------------------------------------------------------------------------------------------
-- Pre-authentication look-ups. Each answers one narrow question from a secret the caller holds
-- (an email's blind index, a token's hash) with just the ids needed to pin the 'auth' context.
-- They are SECURITY DEFINER, owned by NOLOGIN roles that are not superusers and have no
-- BYPASSRLS: FORCE ROW LEVEL SECURITY still applies to them, through the permissive policies
-- TO those roles below. search_path is pinned so a caller cannot redirect a name.
-- ---------------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public, custos TO custos_auth_lookup, custos_invite_redeemer;
GRANT SELECT ON users, sessions, refresh_tokens, mfa_challenges, organizations TO custos_auth_lookup;
DROP POLICY IF EXISTS organizations_auth_lookup ON organizations;
CREATE POLICY organizations_auth_lookup ON organizations FOR SELECT TO custos_auth_lookup USING (true);
GRANT SELECT ON patient_invites, patients TO custos_invite_redeemer;
GRANT UPDATE (used_at, used_by, failed_attempts) ON patient_invites TO custos_invite_redeemer;
GRANT UPDATE (user_id) ON patients TO custos_invite_redeemer;
GRANT INSERT ON users TO custos_invite_redeemer;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'sessions', 'refresh_tokens', 'mfa_challenges'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_auth_lookup', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO custos_auth_lookup USING (true)', t || '_auth_lookup', t);
    END LOOP;
END $$;
DROP POLICY IF EXISTS patient_invites_redeemer ON patient_invites;
CREATE POLICY patient_invites_redeemer ON patient_invites FOR ALL TO custos_invite_redeemer
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS patients_invite_redeemer ON patients;
CREATE POLICY patients_invite_redeemer ON patients FOR ALL TO custos_invite_redeemer
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS users_invite_redeemer ON users;
CREATE POLICY users_invite_redeemer ON users FOR INSERT TO custos_invite_redeemer
    WITH CHECK (role = 'patient');

-- Maintenance commands (import) name an organization: its id, from its name or id.
CREATE OR REPLACE FUNCTION custos.organization_id(p_name_or_id text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT o.id FROM public.organizations o
    WHERE o.id::text = lower(btrim(p_name_or_id)) OR lower(o.name) = lower(btrim(p_name_or_id))
    LIMIT 1
$$;

-- Login: the account with this email blind index.
CREATE OR REPLACE FUNCTION custos.auth_user_by_email(p_email_bidx bytea)
RETURNS TABLE (user_id uuid, org_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.id, u.org_id FROM public.users u WHERE u.email_bidx = p_email_bidx
$$;

-- Refresh: the account whose session this refresh token (used or not) belongs to.
CREATE OR REPLACE FUNCTION custos.auth_user_by_refresh_token(p_token_hash bytea)
RETURNS TABLE (user_id uuid, org_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.user_id, s.org_id FROM public.refresh_tokens rt JOIN public.sessions s ON s.id = rt.session_id
    WHERE rt.token_hash = p_token_hash
$$;

-- MFA step: the account an MFA challenge token was issued to.
CREATE OR REPLACE FUNCTION custos.auth_user_by_mfa_challenge(p_token_hash bytea)
RETURNS TABLE (user_id uuid, org_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.user_id, c.org_id FROM public.mfa_challenges c WHERE c.token_hash = p_token_hash
$$;

-- Registration: a live invite (unused, unexpired) with what redemption must check: the sealed
-- date of birth on file (the registrant must know it) and who issued the invite (audit).
-- "Now" is the later of the database clock and the server's (injectable) clock, so a caller
-- cannot move time backwards to revive an expired invite.
CREATE OR REPLACE FUNCTION custos.invite_by_code(p_code_hash bytea, p_now timestamptz)
RETURNS TABLE (invite_id uuid, org_id uuid, patient_id uuid, created_by uuid, birth_date_enc bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.id, i.org_id, i.patient_id, i.created_by, p.birth_date_enc
    FROM public.patient_invites i JOIN public.patients p ON p.id = i.patient_id AND p.org_id = i.org_id
    WHERE i.code_hash = p_code_hash AND i.used_at IS NULL AND i.expires_at > greatest(now(), p_now)
      AND p.user_id IS NULL
$$;

-- A failed redemption of a live invite (wrong date of birth, email taken): counts it, and
-- consumes the invite (used_at set, used_by empty) at p_max failures or at once when
-- p_consume. Returns whether the invite is now consumed; no row when the code is not live.
CREATE OR REPLACE FUNCTION custos.invite_failed(p_code_hash bytea, p_now timestamptz, p_max integer, p_consume boolean)
RETURNS TABLE (consumed boolean)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE public.patient_invites i
    SET failed_attempts = i.failed_attempts + 1,
        used_at = CASE WHEN p_consume OR i.failed_attempts + 1 >= p_max THEN greatest(now(), p_now) END
    WHERE i.code_hash = p_code_hash AND i.used_at IS NULL AND i.expires_at > greatest(now(), p_now)
    RETURNING i.used_at IS NOT NULL
$$;

-- Redemption: the only way a patient account is created from outside an organization and the
-- only way the app links patients.user_id. Under lock, for a live invite: creates the patient
-- account (sealed email, blind index and password hash prepared by the server; a taken email
-- raises unique_violation), links the record, marks the invite used. No row when the code is
-- not live or the record already has an account (the caller rolls back).
CREATE OR REPLACE FUNCTION custos.redeem_invite(p_code_hash bytea, p_now timestamptz, p_user_id uuid,
    p_email_enc bytea, p_email_bidx bytea, p_password_hash text)
RETURNS TABLE (org_id uuid, patient_id uuid, invite_id uuid, created_by uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    inv record;
BEGIN
    SELECT i.id, i.org_id, i.patient_id, i.created_by INTO inv FROM public.patient_invites i
    WHERE i.code_hash = p_code_hash AND i.used_at IS NULL AND i.expires_at > greatest(now(), p_now)
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO public.users (id, org_id, role, email_enc, email_bidx, password_hash)
    VALUES (p_user_id, inv.org_id, 'patient', p_email_enc, p_email_bidx, p_password_hash);
    UPDATE public.patients p SET user_id = p_user_id
    WHERE p.id = inv.patient_id AND p.org_id = inv.org_id AND p.user_id IS NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE public.patient_invites i SET used_at = greatest(now(), p_now), used_by = p_user_id WHERE i.id = inv.id;
    RETURN QUERY SELECT inv.org_id, inv.patient_id, inv.id, inv.created_by;
END $$;

ALTER FUNCTION custos.auth_user_by_email(bytea) OWNER TO custos_auth_lookup;
ALTER FUNCTION custos.organization_id(text) OWNER TO custos_auth_lookup;
REVOKE ALL ON FUNCTION custos.organization_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.organization_id(text) TO custos_app;
ALTER FUNCTION custos.auth_user_by_refresh_token(bytea) OWNER TO custos_auth_lookup;
ALTER FUNCTION custos.auth_user_by_mfa_challenge(bytea) OWNER TO custos_auth_lookup;
ALTER FUNCTION custos.invite_by_code(bytea, timestamptz) OWNER TO custos_invite_redeemer;
ALTER FUNCTION custos.invite_failed(bytea, timestamptz, integer, boolean) OWNER TO custos_invite_redeemer;
ALTER FUNCTION custos.redeem_invite(bytea, timestamptz, uuid, bytea, bytea, text) OWNER TO custos_invite_redeemer;
REVOKE ALL ON FUNCTION custos.auth_user_by_email(bytea), custos.auth_user_by_refresh_token(bytea),
    custos.auth_user_by_mfa_challenge(bytea), custos.invite_by_code(bytea, timestamptz),
    custos.invite_failed(bytea, timestamptz, integer, boolean),
    custos.redeem_invite(bytea, timestamptz, uuid, bytea, bytea, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.auth_user_by_email(bytea), custos.auth_user_by_refresh_token(bytea),
    custos.auth_user_by_mfa_challenge(bytea), custos.invite_by_code(bytea, timestamptz),
    custos.invite_failed(bytea, timestamptz, integer, boolean),
    custos.redeem_invite(bytea, timestamptz, uuid, bytea, bytea, text) TO custos_app;

-- ---------------------------------------------------------------------------------------------
-- Column guards: what the app (custos_app, outside 'system' maintenance) may change in a row it
-- can already update under the policies above. Violations raise insufficient_privilege.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION custos.deny_column_change(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'not allowed: %', what USING ERRCODE = 'insufficient_privilege';
END $$;

-- users: nobody edits email or name through the app. The sign-in flow ('auth', pinned) keeps
-- counters, locks, last login and re-hashes; it may disable (escalation) but never re-enable.
-- A user on themself changes the password (which alone clears must_change_password) and can
-- only add failures and locks. A manager on another user: status, unlock (counters to 0, lock
-- cleared) and forcing a password change — never their password or MFA.
CREATE OR REPLACE FUNCTION custos.guard_user_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pw_changed boolean := NEW.password_hash IS DISTINCT FROM OLD.password_hash;
BEGIN
    IF current_user <> 'custos_app' OR custos.role() = 'system' THEN
        RETURN NEW;
    END IF;
    IF NEW.email_enc IS DISTINCT FROM OLD.email_enc OR NEW.email_bidx IS DISTINCT FROM OLD.email_bidx
       OR NEW.display_name_enc IS DISTINCT FROM OLD.display_name_enc OR NEW.created_by IS DISTINCT FROM OLD.created_by
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        PERFORM custos.deny_column_change('users identity columns');
    END IF;
    IF custos.role() = 'auth' THEN
        IF NEW.must_change_password IS DISTINCT FROM OLD.must_change_password
           OR NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at
           OR (NEW.status IS DISTINCT FROM OLD.status AND NEW.status <> 'disabled') THEN
            PERFORM custos.deny_column_change('users columns in the sign-in context');
        END IF;
    ELSIF NEW.id = custos.user_id() THEN
        IF NEW.last_login_at IS DISTINCT FROM OLD.last_login_at
           OR (NEW.must_change_password IS DISTINCT FROM OLD.must_change_password
               AND (NEW.must_change_password OR NOT pw_changed))
           OR (NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at AND NOT pw_changed)
           OR (NEW.status IS DISTINCT FROM OLD.status AND NEW.status <> 'disabled')
           OR NEW.consecutive_failures < OLD.consecutive_failures
           OR (NEW.locked_until IS DISTINCT FROM OLD.locked_until
               AND (NEW.locked_until IS NULL OR NEW.locked_until < coalesce(OLD.locked_until, '-infinity')))
           -- the counter restarts only when the lock is applied
           OR (NEW.failed_attempts < OLD.failed_attempts AND (NEW.failed_attempts <> 0 OR NEW.locked_until IS NULL)) THEN
            PERFORM custos.deny_column_change('users columns on oneself');
        END IF;
    ELSIF custos.is_org_manager() THEN
        IF pw_changed OR NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at
           OR NEW.last_login_at IS DISTINCT FROM OLD.last_login_at
           OR (NEW.must_change_password IS DISTINCT FROM OLD.must_change_password AND NOT NEW.must_change_password)
           OR (NEW.failed_attempts <> OLD.failed_attempts AND NEW.failed_attempts <> 0)
           OR (NEW.consecutive_failures <> OLD.consecutive_failures AND NEW.consecutive_failures <> 0)
           OR (NEW.locked_until IS DISTINCT FROM OLD.locked_until AND NEW.locked_until IS NOT NULL) THEN
            PERFORM custos.deny_column_change('users columns of another user');
        END IF;
    ELSE
        PERFORM custos.deny_column_change('users');
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS users_guard ON users;
CREATE TRIGGER users_guard BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION custos.guard_user_update();

-- sessions: who, where and how long are fixed at creation; last_seen_at only moves forward;
-- a revoked session stays revoked; mfa_verified turns on only in the pinned sign-in context
-- and only for a user who has a confirmed second factor.
CREATE OR REPLACE FUNCTION custos.guard_session_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'custos_app' OR custos.role() = 'system' THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.user_id <> OLD.user_id
       OR NEW.created_at <> OLD.created_at OR NEW.expires_at <> OLD.expires_at
       OR NEW.client_ip IS DISTINCT FROM OLD.client_ip OR NEW.user_agent IS DISTINCT FROM OLD.user_agent
       OR NEW.last_seen_at < OLD.last_seen_at OR NEW.phishing_resistant <> OLD.phishing_resistant
       OR (OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
                                           OR NEW.revoked_reason IS DISTINCT FROM OLD.revoked_reason)) THEN
        PERFORM custos.deny_column_change('sessions columns');
    END IF;
    IF NEW.mfa_verified <> OLD.mfa_verified
       AND (NOT NEW.mfa_verified OR custos.role() IS DISTINCT FROM 'auth'
            OR NOT EXISTS (SELECT 1 FROM public.mfa_credentials m
                           WHERE m.user_id = NEW.user_id AND m.confirmed_at IS NOT NULL)) THEN
        PERFORM custos.deny_column_change('sessions.mfa_verified');
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS sessions_guard ON sessions;
CREATE TRIGGER sessions_guard BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION custos.guard_session_update();

-- refresh_tokens: only marked used (once) and linked to their successor (once).
CREATE OR REPLACE FUNCTION custos.guard_refresh_token_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'custos_app' OR custos.role() = 'system' THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.session_id <> OLD.session_id
       OR NEW.token_hash <> OLD.token_hash OR NEW.created_at <> OLD.created_at OR NEW.expires_at <> OLD.expires_at
       OR (OLD.used_at IS NOT NULL AND NEW.used_at IS DISTINCT FROM OLD.used_at)
       OR (OLD.replaced_by IS NOT NULL AND NEW.replaced_by IS DISTINCT FROM OLD.replaced_by) THEN
        PERFORM custos.deny_column_change('refresh_tokens columns');
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS refresh_tokens_guard ON refresh_tokens;
CREATE TRIGGER refresh_tokens_guard BEFORE UPDATE ON refresh_tokens FOR EACH ROW EXECUTE FUNCTION custos.guard_refresh_token_update();

-- mfa_challenges: only used (once) and failures counted upwards.
CREATE OR REPLACE FUNCTION custos.guard_mfa_challenge_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'custos_app' OR custos.role() = 'system' THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.user_id <> OLD.user_id
       OR NEW.token_hash <> OLD.token_hash OR NEW.created_at <> OLD.created_at OR NEW.expires_at <> OLD.expires_at
       OR (OLD.used_at IS NOT NULL AND NEW.used_at IS DISTINCT FROM OLD.used_at)
       OR NEW.failed_attempts < OLD.failed_attempts THEN
        PERFORM custos.deny_column_change('mfa_challenges columns');
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS mfa_challenges_guard ON mfa_challenges;
CREATE TRIGGER mfa_challenges_guard BEFORE UPDATE ON mfa_challenges FOR EACH ROW EXECUTE FUNCTION custos.guard_mfa_challenge_update();

-- mfa_credentials: the secret is replaced only while unconfirmed; confirmation is one-way; the
-- accepted TOTP step only moves forward (reset only together with a new unconfirmed secret).
CREATE OR REPLACE FUNCTION custos.guard_mfa_credential_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'custos_app' OR custos.role() = 'system' THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.user_id <> OLD.user_id OR NEW.created_at <> OLD.created_at
       OR (NEW.secret_enc <> OLD.secret_enc AND OLD.confirmed_at IS NOT NULL)
       OR (OLD.confirmed_at IS NOT NULL AND NEW.confirmed_at IS DISTINCT FROM OLD.confirmed_at)
       OR (NEW.last_used_step IS DISTINCT FROM OLD.last_used_step
           AND NOT (NEW.last_used_step > coalesce(OLD.last_used_step, -1)
                    OR (NEW.last_used_step IS NULL AND OLD.confirmed_at IS NULL AND NEW.secret_enc <> OLD.secret_enc))) THEN
        PERFORM custos.deny_column_change('mfa_credentials columns');
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS mfa_credentials_guard ON mfa_credentials;
CREATE TRIGGER mfa_credentials_guard BEFORE UPDATE ON mfa_credentials FOR EACH ROW EXECUTE FUNCTION custos.guard_mfa_credential_update();

-- recovery_codes: only marked used, once.
CREATE OR REPLACE FUNCTION custos.guard_recovery_code_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'custos_app' OR custos.role() = 'system' THEN
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.user_id <> OLD.user_id OR NEW.code_hash <> OLD.code_hash
       OR NEW.created_at <> OLD.created_at OR OLD.used_at IS NOT NULL THEN
        PERFORM custos.deny_column_change('recovery_codes columns');
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS recovery_codes_guard ON recovery_codes;
CREATE TRIGGER recovery_codes_guard BEFORE UPDATE ON recovery_codes FOR EACH ROW EXECUTE FUNCTION custos.guard_recovery_code_update();

-- patients.user_id (the portal account of a record) is set only by custos.redeem_invite (or a
-- maintenance command): an admin or clinician cannot point a record at an account of theirs.
CREATE OR REPLACE FUNCTION custos.guard_patient_account_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user = 'custos_app' AND custos.role() IS DISTINCT FROM 'system'
       AND NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        PERFORM custos.deny_column_change('patients.user_id (redeem an invite instead)');
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS patients_account_link_guard ON patients;
CREATE TRIGGER patients_account_link_guard BEFORE UPDATE ON patients FOR EACH ROW EXECUTE FUNCTION custos.guard_patient_account_link();
