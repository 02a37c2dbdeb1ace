-- Identity hardening after the security review.
--   * users.consecutive_failures: every failed password/second-factor attempt since the last
--     full sign-in, NOT reset when a temporary lock is applied, so repeated lock cycles
--     escalate (at 100 the account is disabled until an admin re-enables it; SP 800-63B).
--   * mfa_challenges.failed_attempts: a challenge is voided after a few bad codes.
--   * patient_invites.failed_attempts: wrong date-of-birth attempts; the invite is consumed
--     after a few.
--   * refresh_tokens reference (session_id, org_id), so a token can never hang off a session
--     of another organization.

ALTER TABLE users ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0);
ALTER TABLE mfa_challenges ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0);
ALTER TABLE patient_invites ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0);

ALTER TABLE sessions ADD CONSTRAINT sessions_id_org_key UNIQUE (id, org_id);
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_session_id_fkey;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_session_org_fkey
    FOREIGN KEY (session_id, org_id) REFERENCES sessions (id, org_id) ON DELETE RESTRICT;
DROP INDEX refresh_tokens_session_idx;
CREATE INDEX refresh_tokens_session_org_idx ON refresh_tokens (session_id, org_id);
