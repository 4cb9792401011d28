"""Export rows streamed from PostgreSQL through server-side cursors: one batch in memory at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from device_manager.export.encode import Column
from iothub.db import Database

# As the telemetry reader (telemetry.postgres): measurements precede their envelope ts by up to SLACK, and a device
# clock may stamp the envelope up to SKEW early; the exact range applies to each measurement's own ts.
SLACK, SKEW = timedelta(minutes=15), timedelta(minutes=1)

TELEMETRY_COLUMNS = (Column("device_id", "text"), Column("ts", "time"), Column("metric", "text"),
                     Column("value", "float"), Column("unit", "text"))
# Index order (device_id, ts): streams without a sort; measured and derived values in datagram order.
TELEMETRY = """
SELECT t.device_id, m.ts, m.type, m.val, m.unit
FROM telemetry t
CROSS JOIN LATERAL jsonb_to_recordset(t.measurements)
     AS m(ts timestamptz, type text, val double precision, unit text)
WHERE t.device_id = %(device_id)s AND t.ts >= %(lo)s AND t.ts < %(hi)s
  AND m.ts >= %(start)s AND m.ts < %(end)s AND (%(all_metrics)s OR m.type = ANY(%(metrics)s))
ORDER BY t.ts, t.seq
"""
ENERGY_COLUMNS = (Column("device_id", "text"), Column("bucket_start", "time"), Column("bucket_end", "time"),
                  Column("consumed_wh", "float"), Column("regenerated_wh", "float"), Column("apparent_vah", "float"),
                  Column("reactive_varh", "float"), Column("covered_s", "float"), Column("samples", "int"))
ENERGY = """
SELECT device_id, bucket, bucket_end, consumed_wh, regenerated_wh, apparent_vah, reactive_varh, covered_s, samples
FROM energy_buckets WHERE device_id = %(device_id)s AND bucket >= %(start)s AND bucket < %(end)s
ORDER BY bucket
"""
DEVICES_OF_TYPE = """
SELECT d.device_id FROM devices d JOIN device_types t ON t.id = d.device_type_id WHERE t.name = %s ORDER BY 1
"""


class ExportRepository:
    """Row batches of telemetry or energy for a list of devices, in device order."""

    def __init__(self, db: Database, *, batch_rows: int = 10_000):
        self.db = db
        self.batch_rows = batch_rows

    def devices_of_type(self, name: str) -> list[str] | None:
        """Text ids of the devices of a type; None when there is no such type."""
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM device_types WHERE name = %s", (name,))
            if cur.fetchone() is None:
                return None
            cur.execute(DEVICES_OF_TYPE, (name,))
            return [row[0] for row in cur.fetchall()]

    def telemetry(self, device_ids: Sequence[str], start: datetime, end: datetime,
                  metrics: Sequence[str] = ()) -> Iterator[list[tuple]]:
        """Measured and derived readings in [start, end)."""
        params = {"lo": start - SKEW, "hi": end + SLACK, "start": start, "end": end,
                  "all_metrics": not metrics, "metrics": list(metrics)}
        return self._stream(TELEMETRY, device_ids, params)

    def energy(self, device_ids: Sequence[str], start: datetime, end: datetime) -> Iterator[list[tuple]]:
        """Energy buckets starting in [start, end)."""
        return self._stream(ENERGY, device_ids, {"start": start, "end": end})

    def _stream(self, sql: str, device_ids: Sequence[str], params: dict) -> Iterator[list[tuple]]:
        # One transaction, so the export is one snapshot; a named cursor keeps the rows on the server.
        with self.db.transaction() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for n, device_id in enumerate(device_ids):
                with cur.connection.cursor(name=f"export_{n}") as named:
                    named.itersize = self.batch_rows
                    named.execute(sql, {**params, "device_id": device_id})
                    while rows := named.fetchmany(self.batch_rows):
                        yield rows
