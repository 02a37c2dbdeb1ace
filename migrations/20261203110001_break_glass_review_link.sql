-- The break-glass grants page finds the review-queue alert of each grant through the grant's
-- ledger entry (src/monitoring/grants.rs): evidence by ledger index.
CREATE INDEX monitor_alert_events_seq_idx ON monitor_alert_events (org_id, seq);
