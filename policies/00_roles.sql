-- Database roles, created idempotently. Roles are cluster-wide, so several databases (one per
-- test, or staging beside production) share them; concurrent creation is tolerated.
--   custos_app           what every request runs as (SET LOCAL ROLE): no superuser, no
--                        BYPASSRLS, owns nothing; RLS decides every row it sees.
--   custos_sequencer     moves audit_inbox rows into audit_log and signs checkpoints.
--   custos_auditor       read-only on the audit tables, for independent verification.
--   custos_ledger_owner  owns audit_log and audit_checkpoints; NOLOGIN, so nobody acts as it.
--   custos_auth_lookup, custos_invite_redeemer  own the narrow SECURITY DEFINER functions of
--                        the pre-authentication steps (policies/30_rls_identity.sql); NOLOGIN.
--   custos_access_check  owns the per-row access predicates (policies/10_access_functions.sql);
--                        NOLOGIN, reads only the columns an access decision needs.
--   custos_rewrapper     re-encrypts sealed columns under a new data key (`custos keys rewrap`,
--                        policies/80_rewrap.sql); reads and changes nothing else.
--   custos_monitor       the privacy-monitoring engine (policies/70_monitoring.sql).
-- Every role is created here, in the file `custos logins create` runs as a role-creating
-- login: the owner login that migrates has no CREATEROLE.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['custos_app', 'custos_sequencer', 'custos_auditor', 'custos_ledger_owner',
                             'custos_auth_lookup', 'custos_invite_redeemer', 'custos_access_check',
                             'custos_rewrapper', 'custos_monitor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it at the same moment
            END;
        END IF;
    END LOOP;
END $$;

-- Ownership transfers below (functions to custos_access_check / custos_auth_lookup / custos_ledger_owner /
-- custos_invite_redeemer / custos_rewrapper, ledger tables to custos_ledger_owner) need the new owner to hold
-- CREATE on the schema when the migrating login is not a superuser (the production owner
-- login, see `custos logins`). Granted here, taken back again by policies/90_logins.sql once
-- the transfers are done: the NOLOGIN owners never keep it.
-- (Conditional: `custos logins create` runs this file on a database with no schema yet.)
DO $$
BEGIN
    IF to_regnamespace('custos') IS NOT NULL THEN
        GRANT CREATE ON SCHEMA custos TO custos_access_check, custos_auth_lookup, custos_invite_redeemer, custos_rewrapper;
        GRANT CREATE ON SCHEMA public, custos TO custos_ledger_owner;
    END IF;
END $$;
