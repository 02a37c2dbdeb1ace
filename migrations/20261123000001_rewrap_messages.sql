-- Messages stay append-only for everyone, with one narrow exception: `custos keys rewrap`
-- re-encrypting a body under a newer data key. The exception requires all of
--   * the maintenance connection (not custos_app, which has no UPDATE grant on messages
--     anyway), having set custos.rewrap = 'on' for its transaction, and
--   * an UPDATE that changes body_enc and nothing else.
-- DELETE stays refused unconditionally.
CREATE OR REPLACE FUNCTION custos.messages_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('custos.rewrap', true) = 'on'
       AND current_user <> 'custos_app'
       AND (to_jsonb(NEW) - 'body_enc') = (to_jsonb(OLD) - 'body_enc') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER messages_append_only ON messages;
CREATE TRIGGER messages_append_only BEFORE UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION custos.messages_guard();
