"""State store on PostgreSQL: devices, commands, device_configs and ota_device_states in one transaction."""

from __future__ import annotations

import psycopg2.extras

from collector.writers.state import StateBatch
from iothub.db import Database

UPDATE_DEVICES = """
UPDATE devices d SET
  last_seen = GREATEST(d.last_seen, v.last_seen),
  connection_status = CASE WHEN v.status IS NOT NULL
      AND (d.connection_status_at IS NULL OR v.status_at >= d.connection_status_at)
      THEN v.status ELSE d.connection_status END,
  connection_status_at = GREATEST(d.connection_status_at, v.status_at),
  fw_version = CASE WHEN v.fw_version IS NOT NULL AND (d.fw_version_at IS NULL OR v.fw_at >= d.fw_version_at)
      THEN v.fw_version ELSE d.fw_version END,
  fw_version_at = GREATEST(d.fw_version_at, v.fw_at)
FROM (VALUES %s) AS v(device_id, last_seen, status, status_at, fw_version, fw_at)
WHERE d.device_id = v.device_id
"""
DEVICE_ROW = "(%s, %s::timestamptz, %s, %s::timestamptz, %s, %s::timestamptz)"

# Only an open command takes an answer, so a redelivered ack changes nothing; an accepted update_config
# makes the command's params the reported configuration.
APPLY_ACKS = """
WITH a(cmd_id, device_id, result, detail, ts) AS (VALUES %s),
acked AS (
  UPDATE commands c SET status = a.result, detail = a.detail, acked_at = a.ts
  FROM a, devices d
  WHERE c.id = a.cmd_id AND d.id = c.device_id AND d.device_id = a.device_id AND c.status IN ('pending', 'sent')
  RETURNING c.device_id, c.cmd, c.params, c.status, c.acked_at
)
INSERT INTO device_configs AS dc (device_id, reported, reported_version, reported_at)
SELECT acked.device_id, COALESCE(acked.params -> 'config', acked.params),
       CASE WHEN jsonb_typeof(acked.params -> 'version') = 'number' THEN (acked.params ->> 'version')::numeric::int
            ELSE cur.version END,
       acked.acked_at
FROM acked LEFT JOIN device_configs cur ON cur.device_id = acked.device_id
WHERE acked.cmd = 'update_config' AND acked.status = 'accepted'
ON CONFLICT (device_id) DO UPDATE SET reported = EXCLUDED.reported, reported_version = EXCLUDED.reported_version,
  reported_at = EXCLUDED.reported_at
"""
ACK_ROW = "(%s::uuid, %s, %s, %s, %s::timestamptz)"

APPLY_OTA = """
UPDATE ota_device_states o SET state = v.state, progress_pct = v.progress, detail = v.detail, updated_at = v.ts
FROM (VALUES %s) AS v(cmd_id, device_id, state, progress, detail, ts, rank), devices d
WHERE o.cmd_id = v.cmd_id AND d.device_id = v.device_id AND o.device_id = d.id
  AND o.state NOT IN ('success', 'failed')
  AND (array_position(ARRAY['pending', 'downloading', 'verifying', 'applying'], o.state) - 1, o.progress_pct)
      <= (v.rank, v.progress)
"""
OTA_ROW = "(%s::uuid, %s, %s, %s::real, %s, %s::timestamptz, %s::int)"

# The start_ota command is settled by the job's outcome: success -> accepted, failed -> error.
SETTLE_OTA_COMMANDS = """
UPDATE commands c SET status = CASE v.state WHEN 'success' THEN 'accepted' ELSE 'error' END,
  detail = COALESCE(v.detail, c.detail), acked_at = COALESCE(c.acked_at, v.ts)
FROM (VALUES %s) AS v(cmd_id, device_id, state, detail, ts), devices d
WHERE c.id = v.cmd_id AND c.cmd = 'start_ota' AND d.device_id = v.device_id AND c.device_id = d.id
  AND (c.status IN ('pending', 'sent') OR (c.status = 'accepted' AND v.state = 'failed'))
"""
SETTLE_ROW = "(%s::uuid, %s, %s, %s, %s::timestamptz)"


class PostgresStateStore:
    """Applies a collapsed state batch; every statement is guarded so re-applying is a no-op."""

    def __init__(self, db: Database):
        self._db = db

    def apply(self, batch: StateBatch) -> None:
        """One transaction for the whole batch."""
        if not (batch.devices or batch.acks or batch.ota):
            return
        with self._db.transaction() as cur:
            if batch.devices:
                rows = [(s.device_id, s.last_seen, s.status, s.status_at, s.fw_version, s.fw_at)
                        for s in batch.devices]
                psycopg2.extras.execute_values(cur, UPDATE_DEVICES, rows, template=DEVICE_ROW)
            if batch.acks:
                rows = [(a.cmd_id, a.device_id, a.result, a.detail, a.ts) for a in batch.acks]
                psycopg2.extras.execute_values(cur, APPLY_ACKS, rows, template=ACK_ROW, page_size=len(rows))
            if batch.ota:
                rows = [(o.cmd_id, o.device_id, o.state, o.progress, o.detail, o.ts, o.order[0])
                        for o in batch.ota]
                psycopg2.extras.execute_values(cur, APPLY_OTA, rows, template=OTA_ROW)
                done = [(o.cmd_id, o.device_id, o.state, o.detail, o.ts) for o in batch.ota
                        if o.state in ("success", "failed")]
                if done:
                    psycopg2.extras.execute_values(cur, SETTLE_OTA_COMMANDS, done, template=SETTLE_ROW)
