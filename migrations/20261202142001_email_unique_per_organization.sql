-- Staff and portal emails are unique per organization, not across the installation (issue 19,
-- "no cross-tenant email oracle"): an admin creating an account for an email another
-- organization already uses gets exactly what an unknown email gets, because it IS a new,
-- separate account. Sign-in names the organization when an email has accounts in several
-- (docs/architecture.md, "Emails are unique per organization").
DROP INDEX users_email_bidx_key;
CREATE UNIQUE INDEX users_org_id_email_bidx_key ON users (org_id, email_bidx);
