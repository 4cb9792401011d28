-- Notifier: the failure domain a notification's target shares with others (webhook origin, SMTP relay), so the
-- per-target concurrency limit holds for a dead host whatever the URL path.
ALTER TABLE notifications ADD COLUMN target_key text;  -- NULL on older rows: the target itself is the key
