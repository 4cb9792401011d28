-- Device manager operations endpoints: the stats rates and the list filters of events, notifications, dead letters.
-- Ingest rate = telemetry rows received in the last minutes: a BRIN on the append-ordered receipt time keeps that a
-- small range scan of today's partition (created on every existing and future partition).
CREATE INDEX IF NOT EXISTS telemetry_received_brin ON telemetry USING brin (received_at);
-- Reject rate and the since/until filter of /dead-letters, whatever the status.
CREATE INDEX IF NOT EXISTS dead_letters_received_idx ON dead_letters (received_at DESC);
-- /events?rule_id=... (newest first) and /notifications?subscription_id=...
CREATE INDEX IF NOT EXISTS events_rule_idx ON events (rule_id, last_ts DESC) WHERE rule_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS notifications_subscription_idx ON notifications (subscription_id, created_at DESC)
    WHERE subscription_id IS NOT NULL;
