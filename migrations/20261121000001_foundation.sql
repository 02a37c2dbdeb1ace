-- Foundation: extensions, the `custos` schema that holds claim accessors and shared trigger
-- functions, and the closed sets (enums) every later table uses.
-- Row-level security policies and grants are NOT here: they live in policies/, re-applied
-- idempotently after every migration run.

CREATE EXTENSION IF NOT EXISTS pgcrypto;  -- gen_random_uuid() on PG < 13, digest() for tools

CREATE SCHEMA IF NOT EXISTS custos;

-- Claims are transaction-local settings written by the request helper (src/db/tx.rs) with
-- set_config(..., true). Unset or empty means "no claim", which every policy treats as deny.
CREATE FUNCTION custos.user_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('custos.user_id', true), '')::uuid $$;
CREATE FUNCTION custos.org_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('custos.org_id', true), '')::uuid $$;
CREATE FUNCTION custos.role() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('custos.role', true), '') $$;
CREATE FUNCTION custos.request_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('custos.request_id', true), '')::uuid $$;

-- One updated_at trigger function for every table that has the column.
CREATE FUNCTION custos.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

-- Raised by append-only tables (audit_log, audit_checkpoints, messages) on UPDATE, DELETE and
-- TRUNCATE. The audit tables mark the triggers ENABLE ALWAYS so that even
-- session_replication_role = replica does not skip them.
CREATE FUNCTION custos.reject_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TYPE user_role AS ENUM ('patient', 'clinician', 'admin', 'auditor');
CREATE TYPE user_status AS ENUM ('active', 'disabled');
CREATE TYPE sex AS ENUM ('female', 'male', 'other', 'unknown');
CREATE TYPE blood_type AS ENUM ('a_pos', 'a_neg', 'b_pos', 'b_neg', 'ab_pos', 'ab_neg', 'o_pos', 'o_neg', 'unknown');
CREATE TYPE allergy_severity AS ENUM ('mild', 'moderate', 'severe', 'life_threatening');
CREATE TYPE record_status AS ENUM ('active', 'inactive', 'entered_in_error');
CREATE TYPE medication_route AS ENUM ('oral', 'iv', 'im', 'subcutaneous', 'topical', 'inhaled', 'rectal',
    'sublingual', 'transdermal', 'nasal', 'ophthalmic', 'otic', 'other');
CREATE TYPE medication_status AS ENUM ('active', 'completed', 'stopped', 'entered_in_error');
CREATE TYPE prescription_status AS ENUM ('active', 'completed', 'cancelled', 'expired');
CREATE TYPE conversation_status AS ENUM ('pending', 'active', 'closed');
CREATE TYPE key_status AS ENUM ('active', 'retired');
CREATE TYPE audit_action AS ENUM ('read', 'create', 'update', 'delete', 'login', 'login_failed', 'logout',
    'mfa', 'refresh', 'export', 'break_glass', 'admin', 'import', 'security', 'key_management');
CREATE TYPE audit_outcome AS ENUM ('success', 'denied', 'error');

-- What `custos migrate` last applied from policies/ (a digest of the files), so /readyz can
-- tell whether the policies in the database are the ones this binary was built with.
CREATE TABLE custos.policy_state (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    digest      bytea NOT NULL CHECK (length(digest) = 32),
    applied_at  timestamptz NOT NULL DEFAULT now()
);
