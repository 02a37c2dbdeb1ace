-- Organizations, user accounts and everything a login touches: MFA credentials, recovery
-- codes, server-side sessions, rotating refresh tokens and patient portal invites.
-- Every row carries org_id so that RLS (policies/) can keep organizations apart.
-- Users are never deleted (disabled instead), so their children use ON DELETE RESTRICT.

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));

CREATE TABLE users (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    role                  user_role NOT NULL,
    -- The email is sealed (a patient's email is PHI); login finds the row by its blind index.
    email_enc             bytea NOT NULL,
    email_bidx            bytea NOT NULL CHECK (length(email_bidx) = 32),
    display_name_enc      bytea,
    password_hash         text NOT NULL CHECK (password_hash LIKE '$%'),   -- PHC / modular crypt string
    must_change_password  boolean NOT NULL DEFAULT false,
    status                user_status NOT NULL DEFAULT 'active',
    failed_attempts       integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until          timestamptz,
    last_login_at         timestamptz,
    password_changed_at   timestamptz NOT NULL DEFAULT now(),
    created_by            uuid REFERENCES users (id) ON DELETE RESTRICT,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- Lets child tables reference (id, org_id) so a row cannot point across organizations.
    UNIQUE (id, org_id)
);
-- Emails are unique across the whole installation: login asks for an email, not an org.
CREATE UNIQUE INDEX users_email_bidx_key ON users (email_bidx);
CREATE INDEX users_org_role_idx ON users (org_id, role, created_at, id);
CREATE INDEX users_created_by_idx ON users (created_by);

CREATE TABLE mfa_credentials (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL,
    user_id          uuid NOT NULL,
    secret_enc       bytea NOT NULL,
    confirmed_at     timestamptz,
    -- The last TOTP time step accepted: any step not newer is a replay.
    last_used_step   bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX mfa_credentials_user_key ON mfa_credentials (user_id);
CREATE INDEX mfa_credentials_user_org_idx ON mfa_credentials (user_id, org_id);

CREATE TABLE recovery_codes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL,
    user_id     uuid NOT NULL,
    code_hash   bytea NOT NULL CHECK (length(code_hash) = 32),
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX recovery_codes_hash_key ON recovery_codes (user_id, code_hash);
CREATE INDEX recovery_codes_user_org_idx ON recovery_codes (user_id, org_id);

CREATE TABLE sessions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid NOT NULL,
    user_id         uuid NOT NULL,
    mfa_verified    boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,   -- absolute lifetime
    revoked_at      timestamptz,
    revoked_reason  text CHECK (revoked_reason IS NULL OR length(revoked_reason) <= 200),
    client_ip       inet,
    user_agent      text CHECK (user_agent IS NULL OR length(user_agent) <= 512),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (expires_at > created_at),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX sessions_user_org_idx ON sessions (user_id, org_id);
CREATE INDEX sessions_live_idx ON sessions (user_id, created_at) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL,
    session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE RESTRICT,
    token_hash   bytea NOT NULL CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    replaced_by  uuid REFERENCES refresh_tokens (id) ON DELETE RESTRICT,
    CHECK (expires_at > created_at)
);
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_replaced_by_idx ON refresh_tokens (replaced_by);
CREATE INDEX refresh_tokens_org_idx ON refresh_tokens (org_id);

CREATE TRIGGER organizations_touch BEFORE UPDATE ON organizations FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER mfa_credentials_touch BEFORE UPDATE ON mfa_credentials FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER sessions_touch BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
