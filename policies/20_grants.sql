-- Table privileges: the first gate (RLS is the second). Everything is revoked, then granted
-- back to exactly what each role needs. Absent grants are deliberate:
--   * no DELETE on clinical tables (clinical rows are ended or marked, never removed),
--   * messages are INSERT-only, audit_inbox is INSERT-only for the app,
--   * nobody is granted UPDATE/DELETE/TRUNCATE on audit_log or audit_checkpoints,
--   * users.role/org_id are not updatable by the app (nobody raises themselves).
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM custos_app, custos_sequencer, custos_auditor, custos_rewrapper;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public, custos TO custos_app, custos_sequencer, custos_auditor;

GRANT SELECT, INSERT, UPDATE ON organizations, sessions, refresh_tokens, mfa_challenges, patient_invites,
    patients, patient_medical_info, break_glass_grants, allergies, medications,
    medical_history, prescriptions, conversations, encryption_keys
    TO custos_app;
-- Symptoms and attachments are append-only once recorded.
GRANT SELECT, INSERT ON symptoms, attachments TO custos_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mfa_credentials, recovery_codes, care_team_members TO custos_app;
GRANT SELECT, INSERT ON users, messages, legacy_id_map TO custos_app;
GRANT SELECT, INSERT ON break_glass_allowances TO custos_app;
GRANT UPDATE (email_enc, email_bidx, display_name_enc, password_hash, must_change_password, status,
    failed_attempts, locked_until, last_login_at, password_changed_at) ON users TO custos_app;
GRANT INSERT ON audit_inbox TO custos_app;
GRANT SELECT ON audit_log, audit_checkpoints TO custos_app;

GRANT SELECT, DELETE ON audit_inbox TO custos_sequencer;
GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO custos_sequencer;
GRANT SELECT ON organizations TO custos_sequencer;

GRANT SELECT ON audit_log, audit_checkpoints TO custos_auditor;

-- The ledger tables belong to a NOLOGIN role: not the migrating user, not the app.
ALTER TABLE audit_log OWNER TO custos_ledger_owner;
ALTER TABLE audit_checkpoints OWNER TO custos_ledger_owner;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_checkpoints FROM PUBLIC;
