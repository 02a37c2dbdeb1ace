-- Invites the issuer can't redeem (issue 19): the outbox of messages to patients, and the
-- look-up that refuses a redemption coming from the issuer's own client.
--
-- outbox_messages (migration 20261203120001_outbox.sql): a staff member who issues an invite
-- enqueues its message (in their own name, for an invite they issued) and can never read,
-- change or delete it — not even their own: no SELECT, UPDATE or DELETE policy names a user
-- role. Only the sender's service context takes messages: role claim 'outbox', set by the
-- sender task of `custos serve` alone (src/auth/outbox_sender.rs), optionally narrowed to one
-- organization while it settles that organization's message. The message itself is sealed.
GRANT SELECT, INSERT, DELETE ON outbox_messages TO custos_app;
GRANT UPDATE (attempts, next_attempt_at, last_error) ON outbox_messages TO custos_app;

ALTER TABLE outbox_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox_messages FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS outbox_messages_enqueue ON outbox_messages;
CREATE POLICY outbox_messages_enqueue ON outbox_messages FOR INSERT TO custos_app
    WITH CHECK (org_id = custos.org_id() AND created_by = custos.user_id()
                AND custos.role() IN ('admin', 'clinician')
                AND EXISTS (SELECT 1 FROM public.patient_invites i
                            WHERE i.id = outbox_messages.invite_id AND i.org_id = outbox_messages.org_id
                              AND i.patient_id = outbox_messages.patient_id
                              AND i.created_by = custos.user_id() AND i.used_at IS NULL));
-- The sender takes (reads, leases, reschedules, deletes) and never writes a message of its own.
DROP POLICY IF EXISTS outbox_messages_sender ON outbox_messages;
DO $$
DECLARE
    op text;
BEGIN
    FOREACH op IN ARRAY ARRAY['select', 'update', 'delete'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON outbox_messages', 'outbox_messages_sender_' || op);
        EXECUTE format($p$CREATE POLICY %I ON outbox_messages FOR %s TO custos_app
            USING (custos.role() = 'outbox' AND (custos.org_id() IS NULL OR org_id = custos.org_id()))$p$,
            'outbox_messages_sender_' || op, op);
    END LOOP;
END $$;

-- A redemption from the issuer's own client: does the issuer of this live invite have a live
-- session (not revoked, not expired, seen since p_idle_since) from exactly this client
-- address and user agent? Answers only yes or no; SECURITY DEFINER like the other invite
-- look-ups (policies/30_rls_identity.sql), since the registering request has no account.
GRANT SELECT ON sessions TO custos_invite_redeemer;
DROP POLICY IF EXISTS sessions_invite_redeemer ON sessions;
CREATE POLICY sessions_invite_redeemer ON sessions FOR SELECT TO custos_invite_redeemer USING (true);

CREATE OR REPLACE FUNCTION custos.invite_issuer_client(p_code_hash bytea, p_now timestamptz,
    p_idle_since timestamptz, p_client_ip inet, p_user_agent text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.patient_invites i
        JOIN public.sessions s ON s.user_id = i.created_by AND s.org_id = i.org_id
        WHERE i.code_hash = p_code_hash AND i.used_at IS NULL
          AND s.revoked_at IS NULL AND s.expires_at > greatest(now(), p_now) AND s.last_seen_at > p_idle_since
          AND s.client_ip IS NOT DISTINCT FROM p_client_ip AND s.user_agent IS NOT DISTINCT FROM p_user_agent)
$$;
ALTER FUNCTION custos.invite_issuer_client(bytea, timestamptz, timestamptz, inet, text) OWNER TO custos_invite_redeemer;
REVOKE ALL ON FUNCTION custos.invite_issuer_client(bytea, timestamptz, timestamptz, inet, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custos.invite_issuer_client(bytea, timestamptz, timestamptz, inet, text) TO custos_app;
