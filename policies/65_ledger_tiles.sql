-- C2SP tlog-tiles (src/routes/tiles.rs, docs/ledger-format.md "Tiles").
--   audit_public_ledgers  an organization's admin publishes (or withdraws) its ledger's
--                         checkpoint and hash tiles; everybody may read the list.
--   custos.tile_hashes / custos.tile_checkpoint  the only way tiles are read: hashes and the
--                         signed note, never event content, for a published ledger or for its
--                         own auditors and admins. SECURITY DEFINER, owned by the NOLOGIN
--                         custos_ledger_owner (no superuser, no BYPASSRLS), which reads the
--                         ledger tables through the `USING (true)` owner policies below only
--                         inside these two functions (nobody logs in as it).
-- Entry tiles (event content) are read with the caller's own claims under audit_log's policies.

ALTER TABLE audit_public_ledgers OWNER TO custos_ledger_owner;
REVOKE ALL ON audit_public_ledgers FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON audit_public_ledgers TO custos_app;
GRANT SELECT ON audit_public_ledgers TO custos_auditor;
GRANT USAGE ON SCHEMA public, custos TO custos_ledger_owner;

ALTER TABLE audit_public_ledgers ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_public_ledgers FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_public_ledgers_read ON audit_public_ledgers;
CREATE POLICY audit_public_ledgers_read ON audit_public_ledgers FOR SELECT TO custos_app, custos_auditor, custos_ledger_owner
    USING (true);
DROP POLICY IF EXISTS audit_public_ledgers_publish ON audit_public_ledgers;
CREATE POLICY audit_public_ledgers_publish ON audit_public_ledgers FOR INSERT TO custos_app
    WITH CHECK (ledger_id = custos.org_id() AND custos.role() = 'admin');
DROP POLICY IF EXISTS audit_public_ledgers_withdraw ON audit_public_ledgers;
CREATE POLICY audit_public_ledgers_withdraw ON audit_public_ledgers FOR DELETE TO custos_app
    USING (ledger_id = custos.org_id() AND custos.role() = 'admin');

DROP POLICY IF EXISTS audit_log_tiles ON audit_log;
CREATE POLICY audit_log_tiles ON audit_log FOR SELECT TO custos_ledger_owner USING (true);
DROP POLICY IF EXISTS audit_tree_nodes_tiles ON audit_tree_nodes;
CREATE POLICY audit_tree_nodes_tiles ON audit_tree_nodes FOR SELECT TO custos_ledger_owner USING (true);
DROP POLICY IF EXISTS audit_checkpoints_tiles ON audit_checkpoints;
CREATE POLICY audit_checkpoints_tiles ON audit_checkpoints FOR SELECT TO custos_ledger_owner USING (true);

-- May the caller read this ledger's hashes: published, or the caller audits or administers it.
-- Not a definer function itself: only the two below call it, as their owner.
CREATE OR REPLACE FUNCTION custos.tile_reader(ledger uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    -- Never NULL (no claims: org_id() is NULL), so `NOT tile_reader(..)` refuses.
    SELECT EXISTS (SELECT 1 FROM public.audit_public_ledgers p WHERE p.ledger_id = ledger)
        OR coalesce(ledger = custos.org_id() AND custos.role() IN ('auditor', 'admin'), false)
$$;

-- Hashes of tree level `lvl` (0: the leaf hashes), indices [first, first + n), in order.
CREATE OR REPLACE FUNCTION custos.tile_hashes(ledger uuid, lvl smallint, first bigint, n integer)
RETURNS TABLE (idx bigint, hash bytea)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF custos.tile_reader(ledger) IS NOT TRUE OR n < 1 OR n > 256 OR first < 0 THEN
        RETURN;
    END IF;
    IF lvl = 0 THEN
        RETURN QUERY SELECT l.seq, l.leaf_hash FROM public.audit_log l
            WHERE l.ledger_id = ledger AND l.seq >= first AND l.seq < first + n ORDER BY l.seq;
    ELSE
        RETURN QUERY SELECT t.idx, t.hash FROM public.audit_tree_nodes t
            WHERE t.ledger_id = ledger AND t.level = lvl AND t.idx >= first AND t.idx < first + n
            ORDER BY t.idx;
    END IF;
END
$$;

-- The latest signed checkpoint note, followed by its witnesses' cosignature lines
-- (audit_cosignatures, policies/67_witness.sql), ordered by witness key.
CREATE OR REPLACE FUNCTION custos.tile_checkpoint(ledger uuid)
RETURNS TABLE (tree_size bigint, signed_note text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.tree_size, c.signed_note || coalesce((
        SELECT string_agg(s.signature_line, '' ORDER BY s.witness) FROM public.audit_cosignatures s
        WHERE s.ledger_id = c.ledger_id AND s.tree_size = c.tree_size), '')
    FROM public.audit_checkpoints c
    WHERE c.ledger_id = ledger AND custos.tile_reader(ledger)
    ORDER BY c.tree_size DESC LIMIT 1
$$;

ALTER FUNCTION custos.tile_reader(uuid) OWNER TO custos_ledger_owner;
ALTER FUNCTION custos.tile_hashes(uuid, smallint, bigint, integer) OWNER TO custos_ledger_owner;
ALTER FUNCTION custos.tile_checkpoint(uuid) OWNER TO custos_ledger_owner;
REVOKE ALL ON FUNCTION custos.tile_reader(uuid), custos.tile_hashes(uuid, smallint, bigint, integer),
    custos.tile_checkpoint(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.tile_reader(uuid) TO custos_ledger_owner;
GRANT EXECUTE ON FUNCTION custos.tile_hashes(uuid, smallint, bigint, integer),
    custos.tile_checkpoint(uuid) TO custos_app;
