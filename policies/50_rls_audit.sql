-- Who reads and writes the audit tables.
--   app        INSERTs events into audit_inbox and nothing else there; a signed-in user can
--              only record events in their own organization and under their own id (so a
--              buggy handler cannot forge another actor's trail); auditors and admins read
--              their organization's ledger; a patient reads the events about their record
--              (HIPAA accounting of disclosures).
--   sequencer  drains the inbox and appends to the log and checkpoints.
--   auditor    (the database role) reads every ledger, for independent verification.

ALTER TABLE audit_inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_inbox FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_inbox_record ON audit_inbox;
CREATE POLICY audit_inbox_record ON audit_inbox FOR INSERT TO custos_app
    WITH CHECK (
        CASE
            -- A signed-in user records only their own, live events: their org, id, role and
            -- request; never imported or backdated history; a patient only about themself.
            WHEN custos.role() IN ('patient', 'clinician', 'admin', 'auditor')
                THEN org_id = custos.org_id() AND actor_id = custos.user_id()
                     AND actor_role = custos.role()
                     AND request_id IS NOT DISTINCT FROM custos.request_id()
                     AND NOT imported
                     AND occurred_at BETWEEN now() - interval '1 minute' AND clock_timestamp() + interval '1 minute'
                     -- (a patient's refused attempt on another record is still recorded)
                     AND (custos.role() <> 'patient' OR patient_id IS NULL OR outcome = 'denied'
                          OR custos.is_own_patient(patient_id))
            -- sign-in flows: the pinned account's org (no org yet: the system ledger only)
            WHEN custos.role() = 'auth'
                THEN org_id IS NOT DISTINCT FROM custos.org_id()
                     AND (actor_id IS NULL OR actor_id = custos.user_id())
            WHEN custos.role() = 'system'
                THEN custos.org_id() IS NULL OR org_id IS NOT DISTINCT FROM custos.org_id()
            -- the outbox sender (policies/37_invites_outbox.sql): no actor, one org's ledger
            WHEN custos.role() = 'outbox'
                THEN org_id = custos.org_id() AND actor_id IS NULL
            -- no claims (e.g. a request with a bad token): the system ledger only
            ELSE org_id IS NULL AND actor_id IS NULL
        END);
DROP POLICY IF EXISTS audit_inbox_sequencer ON audit_inbox;
CREATE POLICY audit_inbox_sequencer ON audit_inbox FOR ALL TO custos_sequencer
    USING (true) WITH CHECK (false);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_log_read ON audit_log;
CREATE POLICY audit_log_read ON audit_log FOR SELECT TO custos_app
    USING ((org_id = custos.org_id() AND custos.role() IN ('auditor', 'admin'))
           OR (custos.role() = 'patient' AND org_id = custos.org_id()
               AND ((patient_id IS NOT NULL AND custos.is_own_patient(patient_id))
                    -- an access that reached several patients, them among them (format v2)
                    OR (cardinality(patient_ids) > 0 AND patient_ids && (SELECT custos.own_patient_ids()))
                    -- their own sign-ins, and attempts against their account
                    OR (action IN ('login', 'login_failed', 'logout', 'mfa', 'refresh')
                        AND (actor_id = custos.user_id() OR resource_ids @> ARRAY[custos.user_id()::text])))));
DROP POLICY IF EXISTS audit_log_sequencer ON audit_log;
CREATE POLICY audit_log_sequencer ON audit_log FOR ALL TO custos_sequencer
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS audit_log_auditor ON audit_log;
CREATE POLICY audit_log_auditor ON audit_log FOR SELECT TO custos_auditor USING (true);

ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_checkpoints_read ON audit_checkpoints;
CREATE POLICY audit_checkpoints_read ON audit_checkpoints FOR SELECT TO custos_app
    USING (ledger_id = custos.org_id() AND custos.role() IN ('auditor', 'admin'));
DROP POLICY IF EXISTS audit_checkpoints_sequencer ON audit_checkpoints;
CREATE POLICY audit_checkpoints_sequencer ON audit_checkpoints FOR ALL TO custos_sequencer
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS audit_checkpoints_auditor ON audit_checkpoints;
CREATE POLICY audit_checkpoints_auditor ON audit_checkpoints FOR SELECT TO custos_auditor USING (true);

-- custos.imported_events: the legacy activity events an import wrote, for `custos import
-- verify` (src/import/verify.rs), which compares them with the source. The app role may only
-- INSERT into the inbox and reads the log only as an auditor, admin or patient; this function
-- answers, under the organization's system claims only (the importer's), just the rows with
-- `imported` set, of that organization, among the event ids asked for — in the inbox (not yet
-- integrated) or the log. Owned by custos_ledger_owner (NOLOGIN; owns the log), which may read
-- imported inbox rows for this and nothing else there.
GRANT USAGE ON SCHEMA public, custos TO custos_ledger_owner;
GRANT SELECT ON audit_inbox TO custos_ledger_owner;
DROP POLICY IF EXISTS audit_inbox_imported ON audit_inbox;
CREATE POLICY audit_inbox_imported ON audit_inbox FOR SELECT TO custos_ledger_owner USING (imported);
DROP POLICY IF EXISTS audit_log_imported ON audit_log;
CREATE POLICY audit_log_imported ON audit_log FOR SELECT TO custos_ledger_owner USING (imported);
CREATE OR REPLACE FUNCTION custos.imported_events(ids uuid[])
RETURNS TABLE (event_id uuid, occurred_at timestamptz, actor_id uuid, actor_role text, action text,
               resource_type text, resource_id text, patient_id uuid, outcome text, client_ip text,
               user_agent text, reason text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT a.event_id, a.occurred_at, a.actor_id, a.actor_role::text, a.action::text, a.resource_type::text,
           a.resource_ids[1], a.patient_id, a.outcome::text, host(a.client_ip), a.user_agent, a.reason
    FROM (SELECT event_id, occurred_at, actor_id, actor_role, action, resource_type, resource_ids, patient_id,
                 outcome, client_ip, user_agent, reason, org_id, imported FROM audit_inbox
          WHERE event_id = ANY(ids)
          UNION ALL
          SELECT event_id, occurred_at, actor_id, actor_role, action, resource_type, resource_ids, patient_id,
                 outcome, client_ip, user_agent, reason, org_id, imported FROM audit_log
          WHERE event_id = ANY(ids)) a
    WHERE a.imported AND custos.role() = 'system' AND custos.org_id() IS NOT NULL
      AND a.org_id = custos.org_id()
$$;
ALTER FUNCTION custos.imported_events(uuid[]) OWNER TO custos_ledger_owner;
REVOKE ALL ON FUNCTION custos.imported_events(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.imported_events(uuid[]) TO custos_app;

-- custos.events_among_patients: the console's patient filter (src/audit/query.rs
-- `list_events_by_time`) for events that reached several patients (`patient_ids`). Under RLS
-- PostgreSQL will not use `patient_ids @> …` as an index condition (array containment is not
-- LEAKPROOF), so the filter would read every multi-patient event of the ledger; this function
-- finds them through the GIN index instead. It answers only ledger indexes (`seq`), and only
-- to an auditor or admin asking about their own organization's ledger — rows they read in full
-- anyway; the caller then reads the rows themselves under audit_log's policies. Owned by
-- custos_ledger_owner, which owns audit_log (and so could switch its RLS off anyway): its
-- policy here lets it read every row, and the function's WHERE does the checking.
DROP POLICY IF EXISTS audit_log_owner_lookup ON audit_log;
CREATE POLICY audit_log_owner_lookup ON audit_log FOR SELECT TO custos_ledger_owner USING (true);
CREATE OR REPLACE FUNCTION custos.events_among_patients(ledger uuid, patient uuid)
RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT l.seq FROM audit_log l
    WHERE custos.role() IN ('auditor', 'admin') AND ledger = custos.org_id()
      AND l.ledger_id = ledger AND cardinality(l.patient_ids) > 0 AND l.patient_ids @> ARRAY[patient]
$$;
ALTER FUNCTION custos.events_among_patients(uuid, uuid) OWNER TO custos_ledger_owner;
REVOKE ALL ON FUNCTION custos.events_among_patients(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.events_among_patients(uuid, uuid) TO custos_app;
