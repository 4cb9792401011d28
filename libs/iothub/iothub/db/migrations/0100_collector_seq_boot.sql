-- Collector: boot time (hello ts - uptime_s) of a device's current epoch, so a redelivered hello is not a reboot.
ALTER TABLE device_seq_tracking ADD COLUMN boot_at timestamptz;
