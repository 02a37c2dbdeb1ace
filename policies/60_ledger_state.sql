-- Who reads and writes the ledger state tables (audit_ledgers, audit_tree_nodes).
--   sequencer  keeps them: INSERTs tree nodes, INSERTs and UPDATEs ledger rows (never DELETE);
--   app        auditors and admins read their own organization's ledger state (proofs);
--   auditor    (the database role) reads every ledger, for independent verification.
-- Like audit_log, both tables belong to the NOLOGIN custos_ledger_owner.

ALTER TABLE audit_ledgers OWNER TO custos_ledger_owner;
ALTER TABLE audit_tree_nodes OWNER TO custos_ledger_owner;
REVOKE ALL ON audit_ledgers, audit_tree_nodes FROM PUBLIC;

GRANT SELECT, INSERT, UPDATE ON audit_ledgers TO custos_sequencer;
GRANT SELECT, INSERT ON audit_tree_nodes TO custos_sequencer;
GRANT SELECT ON audit_ledgers, audit_tree_nodes TO custos_app, custos_auditor;

ALTER TABLE audit_ledgers ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_ledgers FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_ledgers_read ON audit_ledgers;
CREATE POLICY audit_ledgers_read ON audit_ledgers FOR SELECT TO custos_app
    USING (ledger_id = custos.org_id() AND custos.role() IN ('auditor', 'admin'));
DROP POLICY IF EXISTS audit_ledgers_sequencer ON audit_ledgers;
CREATE POLICY audit_ledgers_sequencer ON audit_ledgers FOR ALL TO custos_sequencer
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS audit_ledgers_auditor ON audit_ledgers;
CREATE POLICY audit_ledgers_auditor ON audit_ledgers FOR SELECT TO custos_auditor USING (true);

ALTER TABLE audit_tree_nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_tree_nodes FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_tree_nodes_read ON audit_tree_nodes;
CREATE POLICY audit_tree_nodes_read ON audit_tree_nodes FOR SELECT TO custos_app
    USING (ledger_id = custos.org_id() AND custos.role() IN ('auditor', 'admin'));
DROP POLICY IF EXISTS audit_tree_nodes_sequencer ON audit_tree_nodes;
CREATE POLICY audit_tree_nodes_sequencer ON audit_tree_nodes FOR ALL TO custos_sequencer
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS audit_tree_nodes_auditor ON audit_tree_nodes;
CREATE POLICY audit_tree_nodes_auditor ON audit_tree_nodes FOR SELECT TO custos_auditor USING (true);

-- The sequencer claims inbox rows with SELECT ... FOR UPDATE SKIP LOCKED, which PostgreSQL
-- allows only with UPDATE privilege on some column. `id` is GENERATED ALWAYS (not writable)
-- and the sequencer's inbox policy has WITH CHECK (false): the grant locks, it cannot change.
GRANT UPDATE (id) ON audit_inbox TO custos_sequencer;
