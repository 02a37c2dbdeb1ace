-- custos_rewrapper: what `custos keys rewrap` runs as (SET LOCAL ROLE, from the maintenance
-- login). Re-encrypting every sealed value under the newest data key crosses organizations,
-- so it cannot run under one organization's claims; instead this NOLOGIN role may read a
-- row's id and its sealed columns, and change only those columns — nothing else, in any
-- table. The integrity guards still apply: append-only rows (messages, attachments) accept
-- the re-encryption only with custos.rewrap = 'on' and only of the sealed columns.
-- The list is src/clinical/sealed.rs's SEALED_COLUMNS (a unit test compares them).
GRANT USAGE ON SCHEMA public, custos TO custos_rewrapper;
DO $$
DECLARE
    r record;
    t text;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('users', 'email_enc'), ('users', 'display_name_enc'), ('mfa_credentials', 'secret_enc'),
        ('patients', 'mrn_enc'), ('patients', 'given_name_enc'), ('patients', 'family_name_enc'),
        ('patients', 'birth_date_enc'), ('patients', 'ssn_enc'), ('patients', 'phone_enc'),
        ('patients', 'email_enc'), ('patients', 'address_enc'),
        ('patient_medical_info', 'emergency_contact_enc'), ('allergies', 'reaction_enc'),
        ('medications', 'notes_enc'), ('medical_history', 'notes_enc'),
        ('prescriptions', 'instructions_enc'), ('prescriptions', 'cancel_reason_enc'),
        ('conversations', 'subject_enc'), ('messages', 'body_enc'),
        ('attachments', 'filename_enc'), ('attachments', 'content_enc'),
        ('idempotency_keys', 'answer_enc'), ('staff_profiles', 'family_name_enc'),
        ('staff_profiles', 'address_enc'), ('patient_flags', 'deceased_on_enc'), ('monitor_decisions', 'note_enc'),
        ('break_glass_grants', 'reason_enc'), ('outbox_messages', 'recipient_enc'), ('outbox_messages', 'body_enc')
    ) AS v (tbl, col) LOOP
        EXECUTE format('GRANT SELECT (id, %I), UPDATE (%I) ON %I TO custos_rewrapper', r.col, r.col, r.tbl);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['users', 'mfa_credentials', 'patients', 'patient_medical_info', 'allergies',
                             'medications', 'medical_history', 'prescriptions', 'conversations', 'messages',
                             'attachments', 'idempotency_keys', 'staff_profiles', 'patient_flags',
                             'monitor_decisions', 'break_glass_grants', 'outbox_messages'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_rewrap_read', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO custos_rewrapper USING (true)', t || '_rewrap_read', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_rewrap', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR UPDATE TO custos_rewrapper USING (true) WITH CHECK (true)',
                       t || '_rewrap', t);
    END LOOP;
END $$;
