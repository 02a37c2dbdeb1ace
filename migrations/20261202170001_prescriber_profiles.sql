-- What a pharmacist needs to know about the prescriber of a prescription (issue 17, item 6):
-- full name as licensed, credentials, NPI, DEA registration, practice name, address and
-- phone. Admin-managed (PUT /v1/admin/users/{id}/profile), one row per staff member. These are
-- the professional's public business identifiers, printed on every prescription: not PHI, so
-- stored in the clear (the privacy facts of staff_profiles stay sealed, in their own table,
-- which clinicians cannot read). Formats and check digits are validated by the domain types
-- (src/domain/prescriber.rs); the CHECKs keep the shape.
CREATE TABLE prescriber_profiles (
    user_id          uuid PRIMARY KEY,
    org_id           uuid NOT NULL,
    full_name        text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    credentials      text CHECK (length(credentials) BETWEEN 1 AND 100),
    npi              text NOT NULL CHECK (npi ~ '^[0-9]{10}$'),
    dea_number       text CHECK (dea_number ~ '^[A-Z][A-Z9][0-9]{7}$'),
    practice_name    text NOT NULL CHECK (length(practice_name) BETWEEN 1 AND 200),
    practice_address text NOT NULL CHECK (length(practice_address) BETWEEN 1 AND 500),
    practice_phone   text NOT NULL CHECK (practice_phone ~ '^\+[1-9][0-9]{6,14}$'),
    updated_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT,
    FOREIGN KEY (updated_by, org_id) REFERENCES users (id, org_id) ON DELETE RESTRICT
);
CREATE INDEX prescriber_profiles_org_idx ON prescriber_profiles (org_id);
CREATE INDEX prescriber_profiles_user_org_idx ON prescriber_profiles (user_id, org_id);
CREATE INDEX prescriber_profiles_updated_by_idx ON prescriber_profiles (updated_by, org_id);
CREATE TRIGGER prescriber_profiles_touch BEFORE UPDATE ON prescriber_profiles
    FOR EACH ROW EXECUTE FUNCTION custos.touch_updated_at();

-- The dosage form (tablet, capsule, oral solution…) a pharmacist dispenses, and the DEA
-- schedule of a controlled substance (2–5 for CII–CV; NULL: not controlled). Prescribing a
-- controlled substance needs the prescriber's DEA number on file (checked by the service).
ALTER TABLE prescriptions
    ADD COLUMN form text CHECK (length(form) BETWEEN 1 AND 200),
    ADD COLUMN schedule smallint CHECK (schedule BETWEEN 2 AND 5);
