-- The console's event browser (issue 15): one page of a ledger's events per filter, in `seq`
-- order by keyset from a cursor (src/audit/query.rs `list_events_ordered`). Each filter gets
-- an index that starts with the ledger, then the filter's column, then `seq`, so a page is a
-- range scan that stops after LIMIT rows in either direction, however large the ledger and
-- however rare or common the value (bench/console_events.rs: p99 per filter on 1M events).
-- The patient filter also looks in `patient_ids` (the GIN index of the v2 migration).
CREATE INDEX audit_log_ledger_patient_seq_idx ON audit_log (ledger_id, patient_id, seq) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_log_ledger_actor_seq_idx ON audit_log (ledger_id, actor_id, seq) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_ledger_action_seq_idx ON audit_log (ledger_id, action, seq);
CREATE INDEX audit_log_ledger_outcome_seq_idx ON audit_log (ledger_id, outcome, seq);
CREATE INDEX audit_log_ledger_break_glass_seq_idx ON audit_log (ledger_id, seq) WHERE break_glass;
CREATE INDEX audit_log_ledger_time_idx ON audit_log (ledger_id, occurred_at, seq);
