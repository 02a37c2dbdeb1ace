-- Passkeys (WebAuthn): the credentials a staff member registered, the short-lived server-side
-- state of each ceremony, the organization's sign-in policies, and which sessions were opened
-- with a phishing-resistant factor. See docs/passkeys.md.

-- The organization's sign-in policies (set by its admins through PUT /v1/admin/auth-policy).
ALTER TABLE organizations
    ADD COLUMN require_phishing_resistant boolean NOT NULL DEFAULT false,
    ADD COLUMN allow_passwordless boolean NOT NULL DEFAULT false;

-- A session opened with a passkey (second factor or passwordless). Under the organization's
-- "phishing-resistant factor" policy, a staff session without it may only enrol a passkey.
ALTER TABLE sessions ADD COLUMN phishing_resistant boolean NOT NULL DEFAULT false;

CREATE TABLE passkey_credentials (
    id                uuid PRIMARY KEY,
    org_id            uuid NOT NULL,
    user_id           uuid NOT NULL,
    -- The authenticator's credential id (raw bytes), unique across the installation: the
    -- passwordless sign-in finds the account by it.
    credential_id     bytea NOT NULL CONSTRAINT passkey_credentials_credential_id_check
                          CHECK (length(credential_id) BETWEEN 16 AND 1023),
    -- webauthn-rs's serialized Passkey: public key (COSE), algorithm, counter, flags. No secret.
    passkey           jsonb NOT NULL,
    sign_count        bigint NOT NULL DEFAULT 0 CONSTRAINT passkey_credentials_sign_count_check
                          CHECK (sign_count BETWEEN 0 AND 4294967295),
    backup_eligible   boolean NOT NULL,
    backup_state      boolean NOT NULL,
    label             text NOT NULL CONSTRAINT passkey_credentials_label_check
                          CHECK (length(btrim(label)) BETWEEN 1 AND 100),
    created_at        timestamptz NOT NULL,
    last_used_at      timestamptz,
    -- Set when an assertion came with a counter that did not move forward (a cloned
    -- credential): the passkey is refused from then on.
    clone_detected_at timestamptz,
    CONSTRAINT passkey_credentials_user_fkey FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX passkey_credentials_credential_key ON passkey_credentials (credential_id);
CREATE INDEX passkey_credentials_user_org_idx ON passkey_credentials (user_id, org_id);

-- A ceremony in progress: the challenge state webauthn-rs needs to finish it. Single use (the
-- finish DELETEs it, whatever the outcome), five minutes. Bound to what started it:
--   register       the signed-in user and session (user_id, session_id);
--   second_factor  the MFA challenge of a password step (challenge_id, user_id);
--   passwordless   nobody yet (org_id and user_id NULL): only the random ceremony token.
-- The client holds the ceremony token; the table keeps its SHA-256 only.
CREATE TABLE passkey_ceremonies (
    id            uuid PRIMARY KEY,
    token_hash    bytea NOT NULL CONSTRAINT passkey_ceremonies_token_hash_check CHECK (length(token_hash) = 32),
    kind          text NOT NULL CONSTRAINT passkey_ceremonies_kind_check
                      CHECK (kind IN ('register', 'second_factor', 'passwordless')),
    org_id        uuid,
    user_id       uuid,
    session_id    uuid,
    challenge_id  uuid,
    label         text,
    state         jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    CONSTRAINT passkey_ceremonies_expiry_check CHECK (expires_at > created_at),
    CONSTRAINT passkey_ceremonies_binding_check CHECK (
        (kind = 'register' AND org_id IS NOT NULL AND user_id IS NOT NULL AND session_id IS NOT NULL)
        OR (kind = 'second_factor' AND org_id IS NOT NULL AND user_id IS NOT NULL AND challenge_id IS NOT NULL)
        OR (kind = 'passwordless' AND org_id IS NULL AND user_id IS NULL)),
    CONSTRAINT passkey_ceremonies_user_fkey FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX passkey_ceremonies_token_key ON passkey_ceremonies (token_hash);
CREATE INDEX passkey_ceremonies_user_org_idx ON passkey_ceremonies (user_id, org_id);
CREATE INDEX passkey_ceremonies_expires_idx ON passkey_ceremonies (expires_at);
