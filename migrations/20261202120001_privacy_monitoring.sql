-- Privacy monitoring (docs/privacy-monitoring.md): the data the detectors need, the engine's
-- state, what it found, and the reviewers' decisions.
--
-- Admin-managed facts, sealed like PHI (AES-256-GCM bound to table/column/row, src/crypto):
--   staff_profiles     a staff member's family name and address (sealed + keyed blind index of
--                      the normalized value, so the engine compares them without decrypting)
--                      and the patient record that is this employee, if any;
--   patient_flags      confidential ("VIP") and the date of death (sealed);
--   org_working_hours  the organization's time zone and opening hours per weekday.
-- Engine-owned (written only by the custos_monitor role, in the same transaction as the
-- watermark that says how far each ledger has been analyzed — restart-safe by construction):
--   monitor_watermarks, monitor_patient_keys, monitor_user_state, monitor_explanations,
--   monitor_daily_stats, monitor_alerts, monitor_alert_events.
-- Reviewer-owned: monitor_decisions (every decision is also a ledger event).

CREATE TYPE monitor_alert_status AS ENUM ('open', 'needs_follow_up', 'appropriate', 'violation');
CREATE TYPE monitor_outcome AS ENUM ('appropriate', 'violation', 'needs_follow_up');

CREATE TABLE staff_profiles (
    user_id           uuid PRIMARY KEY,
    -- The row id the sealed values are bound to (and `custos keys rewrap` walks): the user's.
    id                uuid GENERATED ALWAYS AS (user_id) STORED UNIQUE,
    org_id            uuid NOT NULL,
    family_name_enc   bytea,
    family_name_bidx  bytea CHECK (family_name_bidx IS NULL OR length(family_name_bidx) = 32),
    address_enc       bytea,
    address_bidx      bytea CHECK (address_bidx IS NULL OR length(address_bidx) = 32),
    -- The patient record that is this employee (employee_patient, self_access).
    patient_id        uuid,
    updated_by        uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((family_name_enc IS NULL) = (family_name_bidx IS NULL)),
    CHECK ((address_enc IS NULL) = (address_bidx IS NULL)),
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (updated_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX staff_profiles_patient_key ON staff_profiles (patient_id) WHERE patient_id IS NOT NULL;
CREATE INDEX staff_profiles_org_idx ON staff_profiles (org_id);
CREATE INDEX staff_profiles_user_org_idx ON staff_profiles (user_id, org_id);
CREATE INDEX staff_profiles_patient_org_idx ON staff_profiles (patient_id, org_id);
CREATE INDEX staff_profiles_updated_by_idx ON staff_profiles (updated_by, org_id);

CREATE TABLE patient_flags (
    patient_id       uuid PRIMARY KEY,
    -- The row id the sealed date is bound to (and `custos keys rewrap` walks): the patient's.
    id               uuid GENERATED ALWAYS AS (patient_id) STORED UNIQUE,
    org_id           uuid NOT NULL,
    confidential     boolean NOT NULL DEFAULT false,
    deceased_on_enc  bytea,
    updated_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (updated_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX patient_flags_org_idx ON patient_flags (org_id);
CREATE INDEX patient_flags_patient_org_idx ON patient_flags (patient_id, org_id);
CREATE INDEX patient_flags_updated_by_idx ON patient_flags (updated_by, org_id);

CREATE TABLE org_working_hours (
    org_id      uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE RESTRICT,
    -- An IANA zone PostgreSQL knows (checked against pg_timezone_names by the service).
    time_zone   text NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 64),
    -- {"mon": ["08:00", "18:00"], …}; a missing day is closed. Validated by the service.
    days        jsonb NOT NULL CHECK (jsonb_typeof(days) = 'object'),
    updated_by  uuid,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (updated_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX org_working_hours_updated_by_idx ON org_working_hours (updated_by, org_id);

CREATE TRIGGER staff_profiles_touch BEFORE UPDATE ON staff_profiles FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER patient_flags_touch BEFORE UPDATE ON patient_flags FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();
CREATE TRIGGER org_working_hours_touch BEFORE UPDATE ON org_working_hours FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();

-- How far the engine has analyzed each ledger: every entry with seq < next_seq is done.
CREATE TABLE monitor_watermarks (
    ledger_id   uuid PRIMARY KEY,
    org_id      uuid NOT NULL UNIQUE REFERENCES organizations (id) ON DELETE RESTRICT,
    next_seq    bigint NOT NULL DEFAULT 0 CHECK (next_seq >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ledger_id = org_id)
);

-- The patient side of the blind-index comparison, computed once per patient version by the
-- engine (it holds the keys) from the sealed demographics.
CREATE TABLE monitor_patient_keys (
    patient_id        uuid PRIMARY KEY,
    org_id            uuid NOT NULL,
    family_name_bidx  bytea CHECK (family_name_bidx IS NULL OR length(family_name_bidx) = 32),
    address_bidx      bytea CHECK (address_bidx IS NULL OR length(address_bidx) = 32),
    source_updated_at timestamptz NOT NULL,
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX monitor_patient_keys_org_idx ON monitor_patient_keys (org_id);
CREATE INDEX monitor_patient_keys_patient_org_idx ON monitor_patient_keys (patient_id, org_id);

-- Per-user behaviour the detectors compare against (own usual hours, daily volume baseline,
-- last activity, disable time), advanced with the watermark.
CREATE TABLE monitor_user_state (
    user_id         uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    hours           bigint[] NOT NULL CHECK (cardinality(hours) = 24),
    last_access_at  timestamptz,
    day             date,
    day_patients    uuid[] NOT NULL DEFAULT '{}',
    baseline_days   integer NOT NULL DEFAULT 0 CHECK (baseline_days >= 0),
    baseline_mean   double precision NOT NULL DEFAULT 0,
    disabled_at     timestamptz,
    disabled_seq    bigint,
    -- The role the user last acted in (whose baseline theirs joins).
    role            text CHECK (role IS NULL OR length(role) <= 32)
);
CREATE INDEX monitor_user_state_org_idx ON monitor_user_state (org_id);

-- The explanation of each access entry, beside it (same ledger index).
--   code 0 = unexplained; otherwise monitoring::explain::Explanation's code.
CREATE TABLE monitor_explanations (
    ledger_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    explanation  smallint NOT NULL CHECK (explanation BETWEEN 0 AND 32),
    PRIMARY KEY (ledger_id, seq)
);

CREATE TABLE monitor_daily_stats (
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    day        date NOT NULL,
    accesses   bigint NOT NULL DEFAULT 0 CHECK (accesses >= 0),
    explained  bigint NOT NULL DEFAULT 0 CHECK (explained >= 0 AND explained <= accesses),
    PRIMARY KEY (org_id, day)
);

CREATE TABLE monitor_alerts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    detector     text NOT NULL CHECK (detector ~ '^[a-z_]{1,32}$'),
    actor_id     uuid NOT NULL,
    patient_id   uuid,
    -- What makes two findings the same alert besides detector/actor/patient (a day, a grant).
    bucket       text NOT NULL DEFAULT '' CHECK (length(bucket) <= 64),
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    event_count  bigint NOT NULL CHECK (event_count >= 1),
    status       monitor_alert_status NOT NULL DEFAULT 'open',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (last_seen >= first_seen),
    UNIQUE (id, org_id)
);
-- One live alert per finding: new evidence joins it until a reviewer closes it.
CREATE UNIQUE INDEX monitor_alerts_live_key ON monitor_alerts
    (org_id, detector, actor_id, coalesce(patient_id, '00000000-0000-0000-0000-000000000000'::uuid), bucket)
    WHERE status IN ('open', 'needs_follow_up');
CREATE INDEX monitor_alerts_list_idx ON monitor_alerts (org_id, id);
CREATE INDEX monitor_alerts_status_idx ON monitor_alerts (org_id, status, created_at);
CREATE INDEX monitor_alerts_actor_idx ON monitor_alerts (org_id, actor_id);
CREATE INDEX monitor_alerts_patient_idx ON monitor_alerts (org_id, patient_id);
CREATE TRIGGER monitor_alerts_touch BEFORE UPDATE ON monitor_alerts FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();

-- The evidence: the ledger entries behind an alert, with the explanation each had.
CREATE TABLE monitor_alert_events (
    alert_id     uuid NOT NULL REFERENCES monitor_alerts (id) ON DELETE RESTRICT,
    org_id       uuid NOT NULL,
    seq          bigint NOT NULL,
    -- The patient the entry is evidence about (the nil UUID for a per-user finding).
    patient_id   uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000'::uuid,
    explanation  smallint NOT NULL,
    PRIMARY KEY (alert_id, seq, patient_id)
);
CREATE INDEX monitor_alert_events_org_idx ON monitor_alert_events (org_id);

CREATE TABLE monitor_decisions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_id     uuid NOT NULL,
    org_id       uuid NOT NULL,
    reviewer_id  uuid NOT NULL,
    outcome      monitor_outcome NOT NULL,
    note_enc     bytea,
    -- The ledger event that records this decision, and the one of the decision it follows.
    event_id     uuid NOT NULL UNIQUE,
    supersedes   uuid,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (alert_id, org_id) REFERENCES monitor_alerts (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (reviewer_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX monitor_decisions_alert_idx ON monitor_decisions (alert_id, decided_at);
CREATE INDEX monitor_decisions_alert_org_idx ON monitor_decisions (alert_id, org_id);
CREATE INDEX monitor_decisions_reviewer_idx ON monitor_decisions (reviewer_id, org_id);
CREATE INDEX monitor_decisions_org_idx ON monitor_decisions (org_id, decided_at);
