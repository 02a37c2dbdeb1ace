-- Second-step login challenges: after a correct password, a user with MFA gets a single-use
-- token (stored hashed, 5 minutes) that POST /v1/auth/mfa/verify exchanges, with a TOTP or
-- recovery code, for a session. Bound to the user; never reusable once used_at is set.

CREATE TABLE mfa_challenges (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL,
    user_id     uuid NOT NULL,
    token_hash  bytea NOT NULL CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at),
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX mfa_challenges_token_key ON mfa_challenges (token_hash);
CREATE INDEX mfa_challenges_user_org_idx ON mfa_challenges (user_id, org_id);
