-- Rule engine: built-in "redundancy" rule. A meter publishing to several brokers (spec REQ-BROKER-001) reports in
-- every hello how many it is connected to now; fewer than configured means one broker loss from losing data.
-- Judged against the broker list of the device's applied configuration, or params.min_connections when set.
ALTER TABLE rules DROP CONSTRAINT IF EXISTS rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check
    CHECK (kind IN ('threshold', 'seq_gap', 'offline', 'ota_failed', 'command_timeout', 'redundancy'));
INSERT INTO rules (name, kind, severity, message_template, params)
SELECT 'Broker redundancy lost', 'redundancy', 'warning',
       '{device_id} is connected to {value} of its {expected} broker(s)', '{}'
WHERE NOT EXISTS (SELECT 1 FROM rules WHERE kind = 'redundancy');
