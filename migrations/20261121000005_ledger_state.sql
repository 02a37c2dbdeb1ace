-- Ledger state kept by the audit sequencer, beside the append-only log.
--
-- audit_ledgers: one row per ledger (an organization, or the nil UUID for the system ledger):
-- its size, the head of the hash chain, and the compact Merkle range ("tree state": one hash
-- per maximal complete subtree) from which the next append and the current root follow. The
-- sequencer locks and updates this row in the same transaction as the batch it appends, so
-- the state can never disagree with the log it describes.
--
-- audit_tree_nodes: every complete interior subtree hash (level >= 1) of every ledger. A node
-- never changes once complete, so an inclusion or consistency proof reads O(log n) rows by
-- primary key whatever the ledger's size. Level-0 nodes are the leaves, already stored in
-- audit_log.leaf_hash. Append-only like the log, with the same ENABLE ALWAYS triggers.

CREATE TABLE audit_ledgers (
    ledger_id        uuid PRIMARY KEY,
    org_id           uuid UNIQUE REFERENCES organizations (id) ON DELETE RESTRICT,  -- NULL: system
    size             bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
    chain_head       bytea NOT NULL CHECK (length(chain_head) = 32),
    tree_state       bytea NOT NULL CHECK (length(tree_state) >= 9),
    root_hash        bytea NOT NULL CHECK (length(root_hash) = 32),
    -- Size of the latest signed checkpoint; the sequencer signs while size > checkpoint_size.
    checkpoint_size  bigint NOT NULL DEFAULT 0 CHECK (checkpoint_size >= 0 AND checkpoint_size <= size),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ledger_id = coalesce(org_id, '00000000-0000-0000-0000-000000000000'::uuid))
);
CREATE TRIGGER audit_ledgers_touch BEFORE UPDATE ON audit_ledgers
    FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();

CREATE TABLE audit_tree_nodes (
    ledger_id  uuid NOT NULL,
    level      smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx        bigint NOT NULL CHECK (idx >= 0),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (ledger_id, level, idx)
);

CREATE TRIGGER audit_tree_nodes_append_only BEFORE UPDATE OR DELETE ON audit_tree_nodes
    FOR EACH ROW EXECUTE FUNCTION custos.reject_mutation();
CREATE TRIGGER audit_tree_nodes_no_truncate BEFORE TRUNCATE ON audit_tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION custos.reject_mutation();
ALTER TABLE audit_tree_nodes ENABLE ALWAYS TRIGGER audit_tree_nodes_append_only;
ALTER TABLE audit_tree_nodes ENABLE ALWAYS TRIGGER audit_tree_nodes_no_truncate;

-- The latest checkpoint of any ledger (/readyz); per ledger, the primary key serves.
CREATE INDEX audit_checkpoints_created_idx ON audit_checkpoints (created_at);

-- The canonical event form writes occurred_at as a 4-digit year: keep inbox timestamps in
-- range so one odd imported event can never stall the sequencer.
ALTER TABLE audit_inbox ADD CONSTRAINT audit_inbox_occurred_at_range
    CHECK (occurred_at >= '0001-01-01T00:00:00Z' AND occurred_at < '9999-12-31T00:00:00Z');
