-- Configuration audit (device spec v2, REQ-CONFIG-001): update_config now carries flat spec params, so the desired
-- version it delivers is kept beside the command instead of inside its params.
ALTER TABLE commands ADD COLUMN IF NOT EXISTS config_version integer;

-- One row per accepted update_config, written by the collector with the ack (cmd_id unique: a redelivered ack
-- records once). Not a foreign key to commands: the audit outlives pruned commands, not the device.
CREATE TABLE IF NOT EXISTS device_config_history (
    id             bigserial PRIMARY KEY,
    device_id      uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    cmd_id         uuid NOT NULL UNIQUE,
    applied        jsonb NOT NULL,                -- the params the device accepted
    config         jsonb NOT NULL,                -- the full reported configuration after applying them
    config_version integer,                       -- the desired version the command carried (null: direct command)
    applied_at     timestamptz NOT NULL,          -- the ack's device time
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
-- GET /devices/{id}/config/history, newest first.
CREATE INDEX IF NOT EXISTS device_config_history_device_idx ON device_config_history (device_id, applied_at DESC, id DESC);
