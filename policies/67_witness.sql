-- Witness cosignatures and fork alerts (migrations/20261202140001_witness_cosignatures.sql):
-- written only by the sequencer role (the checkpointer's witness client), read like the
-- checkpoints they belong to — the ledger's auditors and admins, the auditor login, and the
-- tile functions (custos_ledger_owner) that serve cosigned checkpoints. Nobody updates or
-- deletes (grants and an ALWAYS trigger).
ALTER TABLE audit_cosignatures OWNER TO custos_ledger_owner;
ALTER TABLE audit_witness_alerts OWNER TO custos_ledger_owner;
REVOKE ALL ON audit_cosignatures, audit_witness_alerts FROM PUBLIC;
GRANT SELECT ON audit_cosignatures, audit_witness_alerts TO custos_app, custos_auditor;
GRANT SELECT, INSERT ON audit_cosignatures, audit_witness_alerts TO custos_sequencer;

ALTER TABLE audit_cosignatures ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_cosignatures FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_cosignatures_read ON audit_cosignatures;
CREATE POLICY audit_cosignatures_read ON audit_cosignatures FOR SELECT TO custos_app
    USING (ledger_id = custos.org_id() AND custos.role() IN ('auditor', 'admin'));
DROP POLICY IF EXISTS audit_cosignatures_sequencer ON audit_cosignatures;
CREATE POLICY audit_cosignatures_sequencer ON audit_cosignatures FOR ALL TO custos_sequencer
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS audit_cosignatures_auditor ON audit_cosignatures;
CREATE POLICY audit_cosignatures_auditor ON audit_cosignatures FOR SELECT TO custos_auditor, custos_ledger_owner
    USING (true);

ALTER TABLE audit_witness_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_witness_alerts FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_witness_alerts_read ON audit_witness_alerts;
CREATE POLICY audit_witness_alerts_read ON audit_witness_alerts FOR SELECT TO custos_app
    USING (ledger_id = custos.org_id() AND custos.role() IN ('auditor', 'admin'));
DROP POLICY IF EXISTS audit_witness_alerts_sequencer ON audit_witness_alerts;
CREATE POLICY audit_witness_alerts_sequencer ON audit_witness_alerts FOR ALL TO custos_sequencer
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS audit_witness_alerts_auditor ON audit_witness_alerts;
CREATE POLICY audit_witness_alerts_auditor ON audit_witness_alerts FOR SELECT TO custos_auditor USING (true);

-- custos.tile_checkpoint (65_ledger_tiles.sql) appends the cosignature lines to the note.
