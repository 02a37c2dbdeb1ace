-- Idempotency keys (src/clinical/idempotency.rs, src/middleware/idempotency.rs): a signed-in user reads and writes only their
-- own, in their own organization; a key whose 24 hours are over may be removed by its owner
-- (to be used again). Nothing else: the stored answers are sealed, and no other role needs
-- them.
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO custos_app;

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS idempotency_keys_own ON idempotency_keys;
CREATE POLICY idempotency_keys_own ON idempotency_keys FOR SELECT TO custos_app
    USING (user_id = custos.user_id() AND org_id = custos.org_id()
           AND custos.role() IN ('patient', 'clinician', 'admin', 'auditor'));
DROP POLICY IF EXISTS idempotency_keys_write ON idempotency_keys;
CREATE POLICY idempotency_keys_write ON idempotency_keys FOR INSERT TO custos_app
    WITH CHECK (user_id = custos.user_id() AND org_id = custos.org_id()
                AND custos.role() IN ('patient', 'clinician', 'admin', 'auditor'));
DROP POLICY IF EXISTS idempotency_keys_expire ON idempotency_keys;
CREATE POLICY idempotency_keys_expire ON idempotency_keys FOR DELETE TO custos_app
    USING (user_id = custos.user_id() AND org_id = custos.org_id()
           AND created_at <= now() - interval '24 hours');
