-- Who reads and writes prescriber profiles (migrations/20261202170001_…): an organization's
-- admins write them (as themselves); every member reads them, because every
-- prescription printed names its prescriber. Public professional identifiers only.
GRANT SELECT, INSERT, UPDATE, DELETE ON prescriber_profiles TO custos_app;
ALTER TABLE prescriber_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE prescriber_profiles FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS prescriber_profiles_admin ON prescriber_profiles;
CREATE POLICY prescriber_profiles_admin ON prescriber_profiles FOR ALL TO custos_app
    USING (org_id = custos.org_id() AND custos.role() IN ('admin', 'system'))
    WITH CHECK (org_id = custos.org_id() AND custos.role() IN ('admin', 'system')
                AND (custos.role() = 'system' OR updated_by = custos.user_id()));
DROP POLICY IF EXISTS prescriber_profiles_read ON prescriber_profiles;
CREATE POLICY prescriber_profiles_read ON prescriber_profiles FOR SELECT TO custos_app
    USING (org_id = custos.org_id());
