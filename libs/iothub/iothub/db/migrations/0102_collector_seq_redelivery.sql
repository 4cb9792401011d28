-- Collector: what tells a redelivery from a new boot (issue 14). A redelivered message repeats the device time and
-- content of one already accepted; a new boot's message is later or different, at whatever seq it restarts.
ALTER TABLE device_seq_tracking ADD COLUMN IF NOT EXISTS last_ts timestamptz;       -- latest device ts of the epoch
ALTER TABLE device_seq_tracking ADD COLUMN IF NOT EXISTS prints bytea;              -- 128 x uint32 content prints
ALTER TABLE device_seq_tracking ADD COLUMN IF NOT EXISTS registration uuid;         -- devices.id the history is of
ALTER TABLE device_seq_tracking ADD COLUMN IF NOT EXISTS prev_ts timestamptz;       -- latest ts of earlier epochs
-- Hellos report the brokers a device is connected to right now (spec REQ-BROKER-001 redundancy).
ALTER TABLE devices ADD COLUMN IF NOT EXISTS broker_connections integer;
ALTER TABLE devices ADD COLUMN IF NOT EXISTS broker_connections_at timestamptz;
