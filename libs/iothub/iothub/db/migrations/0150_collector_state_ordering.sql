-- Collector state writer: when the stored connection status and firmware version were observed, so an older
-- (redelivered or late) message never overwrites newer device state.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS connection_status_at timestamptz;
ALTER TABLE devices ADD COLUMN IF NOT EXISTS fw_version_at timestamptz;
