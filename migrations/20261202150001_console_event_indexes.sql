-- The console's event browser (issue 15): a ledger's events newest first by (occurred_at, seq),
-- one page of 50 per request by keyset (src/audit/query.rs `list_events_by_time`), under the
-- caller's RLS policies. Each filter needs an index that hands the page over in that order and
-- stops after LIMIT rows, however large the ledger and however rare or common the value
-- (bench/console_events.rs measures p99 per filter on 1M events).
--
-- Why partial indexes for `action` and `outcome`: under row-level security PostgreSQL only
-- uses a query's condition as an index condition when its operator is LEAKPROOF, and enum
-- equality is not (uuid, timestamptz and bigint comparisons are). A partial index whose
-- predicate the condition implies is still usable, and each row enters exactly one index per
-- column, so the write cost equals that of one composite index. A new enum value needs its
-- own index here (tests/ledger/queries.rs `every_action_and_outcome_has_its_console_index`).
-- The same goes for `patient_ids @> …` (array containment is not leakproof): those events are
-- found through the GIN index of migration 20261202100001 by custos.events_among_patients
-- (policies/50_rls_audit.sql), then read by primary key.
CREATE INDEX audit_log_console_time_idx ON audit_log (ledger_id, occurred_at, seq);
CREATE INDEX audit_log_console_patient_idx ON audit_log (ledger_id, patient_id, occurred_at, seq)
    WHERE patient_id IS NOT NULL;
CREATE INDEX audit_log_console_actor_idx ON audit_log (ledger_id, actor_id, occurred_at, seq)
    WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_console_break_glass_idx ON audit_log (ledger_id, occurred_at, seq) WHERE break_glass;
CREATE INDEX audit_log_console_action_read_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'read';
CREATE INDEX audit_log_console_action_create_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'create';
CREATE INDEX audit_log_console_action_update_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'update';
CREATE INDEX audit_log_console_action_delete_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'delete';
CREATE INDEX audit_log_console_action_login_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'login';
CREATE INDEX audit_log_console_action_login_failed_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'login_failed';
CREATE INDEX audit_log_console_action_logout_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'logout';
CREATE INDEX audit_log_console_action_mfa_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'mfa';
CREATE INDEX audit_log_console_action_refresh_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'refresh';
CREATE INDEX audit_log_console_action_export_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'export';
CREATE INDEX audit_log_console_action_break_glass_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'break_glass';
CREATE INDEX audit_log_console_action_admin_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'admin';
CREATE INDEX audit_log_console_action_import_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'import';
CREATE INDEX audit_log_console_action_security_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'security';
CREATE INDEX audit_log_console_action_key_management_idx ON audit_log (ledger_id, occurred_at, seq) WHERE action = 'key_management';
CREATE INDEX audit_log_console_outcome_success_idx ON audit_log (ledger_id, occurred_at, seq) WHERE outcome = 'success';
CREATE INDEX audit_log_console_outcome_denied_idx ON audit_log (ledger_id, occurred_at, seq) WHERE outcome = 'denied';
CREATE INDEX audit_log_console_outcome_error_idx ON audit_log (ledger_id, occurred_at, seq) WHERE outcome = 'error';
