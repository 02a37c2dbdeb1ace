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
