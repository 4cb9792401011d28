-- Device manager: indexes behind its list filters and the token blocklist clean-up.
CREATE INDEX IF NOT EXISTS commands_rollout_idx ON commands (rollout_id) WHERE rollout_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS devices_name_idx ON devices (name, id);
CREATE INDEX IF NOT EXISTS token_blocklist_expires_idx ON token_blocklist (expires_at);
