-- What the production logins (`custos logins create`, docs/operations.md) need beyond their
-- group roles, applied last.
--   * Every command except `custos migrate` checks that the database's schema is the one it
--     was built for before it starts, as its own login: the version tables are readable by
--     every login of the database. They hold migration versions, checksums and the policy
--     digest, nothing about any organization. The web, ledger, maintenance and auditor
--     logins are NOINHERIT members of their group roles (a `RESET ROLE` leads nowhere), so
--     the grant has to be to PUBLIC, not to a group role.
--   * The NOLOGIN owners only held CREATE on the schemas while policies/ transferred
--     ownership to them (policies/00_roles.sql).
GRANT USAGE ON SCHEMA custos TO PUBLIC;
GRANT SELECT ON custos.policy_state TO PUBLIC;
GRANT SELECT ON _sqlx_migrations TO PUBLIC;
REVOKE CREATE ON SCHEMA custos FROM custos_access_check, custos_auth_lookup, custos_invite_redeemer, custos_rewrapper;
REVOKE CREATE ON SCHEMA public, custos FROM custos_ledger_owner;
