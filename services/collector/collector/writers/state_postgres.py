"""State store on PostgreSQL: devices, commands, device_configs (+ history) and ota_device_states, one transaction."""

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
  fw_version_at = GREATEST(d.fw_version_at, v.fw_at),
  broker_connections = CASE WHEN v.links IS NOT NULL
      AND (d.broker_connections_at IS NULL OR v.fw_at >= d.broker_connections_at)
      THEN v.links ELSE d.broker_connections END,
  broker_connections_at = CASE WHEN v.links IS NOT NULL THEN GREATEST(d.broker_connections_at, v.fw_at)
      ELSE d.broker_connections_at END
FROM (VALUES %s) AS v(device_id, last_seen, status, status_at, fw_version, fw_at, links)
WHERE d.device_id = v.device_id
"""
DEVICE_ROW = "(%s, %s::timestamptz, %s, %s::timestamptz, %s, %s::timestamptz, %s::int)"

# Only an open command takes an answer, so a redelivered ack changes nothing. An accepted update_config merges its
# flat params into the reported configuration and leaves one device_config_history row; commands written before
# the params were flat carry {version, config}. Several accepted in one batch apply in the device's ack order.
# LOCK_CONFIGS runs first, so a concurrent batch acking another command of the same device (through another broker
# and collector) has committed before APPLY_ACKS takes its snapshot: the history's full configuration includes it.
LOCK_CONFIGS = """
SELECT 1 FROM device_configs dc JOIN devices d ON d.id = dc.device_id WHERE d.device_id = ANY(%s)
ORDER BY dc.device_id FOR UPDATE OF dc
"""
APPLY_ACKS = """
WITH a(cmd_id, device_id, result, detail, ts) AS (VALUES %s),
acked AS (
  UPDATE commands c SET status = a.result, detail = a.detail, acked_at = a.ts
  FROM a, devices d
  WHERE c.id = a.cmd_id AND d.id = c.device_id AND d.device_id = a.device_id AND c.status IN ('pending', 'sent')
  RETURNING c.id, c.device_id, c.cmd, c.params, c.config_version, c.status, c.acked_at, c.created_at
),
accepted AS (
  SELECT id, device_id, acked_at,
         CASE WHEN jsonb_typeof(params -> 'config') = 'object' THEN params -> 'config' ELSE params END AS applied,
         COALESCE(config_version, CASE WHEN jsonb_typeof(params -> 'version') = 'number'
                                       THEN (params ->> 'version')::numeric::int END) AS version,
         row_number() OVER (PARTITION BY device_id ORDER BY acked_at, created_at, id) AS n
  FROM acked WHERE cmd = 'update_config' AND status = 'accepted'
),
merged AS (  -- each command's params merged with those accepted before it in this batch
  SELECT x.*, COALESCE((SELECT jsonb_object_agg(e.key, e.value ORDER BY y.n) FROM accepted y, jsonb_each(y.applied) e
                        WHERE y.device_id = x.device_id AND y.n <= x.n), '{}') AS changes
  FROM accepted x
),
history AS (
  INSERT INTO device_config_history (device_id, cmd_id, applied, config, config_version, applied_at)
  SELECT m.device_id, m.id, m.applied, COALESCE(cur.reported, '{}') || m.changes, m.version, m.acked_at
  FROM merged m LEFT JOIN device_configs cur ON cur.device_id = m.device_id
  ON CONFLICT (cmd_id) DO NOTHING
)
INSERT INTO device_configs AS dc (device_id, reported, reported_version, reported_at)
SELECT DISTINCT ON (device_id) device_id, changes, version, acked_at FROM merged ORDER BY device_id, n DESC
ON CONFLICT (device_id) DO UPDATE SET reported = COALESCE(dc.reported, '{}') || EXCLUDED.reported,
  reported_version = COALESCE(EXCLUDED.reported_version, dc.version), reported_at = EXCLUDED.reported_at
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
                rows = [(s.device_id, s.last_seen, s.status, s.status_at, s.fw_version, s.fw_at, s.broker_connections)
                        for s in batch.devices]
                psycopg2.extras.execute_values(cur, UPDATE_DEVICES, rows, template=DEVICE_ROW)
            if batch.acks:
                cur.execute(LOCK_CONFIGS, (sorted({a.device_id for a in batch.acks}),))
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
