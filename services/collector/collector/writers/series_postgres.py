"""Series store on the partitioned PostgreSQL `telemetry` table: daily partitions on demand, retention by drop.

Each insert also maintains the one-minute rollup `telemetry_1m` through a statement trigger (migration 0160).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import orjson
import psycopg2.errors
import psycopg2.extras

from collector.writers import metrics
from collector.writers.series import (
    WRITER,
    SeriesRecord,
    expired_partitions,
    partition_day,
    partition_name,
    retention_cutoff,
)
from iothub.db import Database

log = logging.getLogger(__name__)
PARTITION_LOCK = 0x10C0_11EC  # advisory lock serialising partition DDL across collectors

INSERT = """
INSERT INTO telemetry (device_id, ts, msg_id, device_type, epoch, seq, measurements, received_at)
VALUES %s ON CONFLICT DO NOTHING
"""
LIST_PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'telemetry'::regclass
"""


def _with_units(items: list) -> list:
    """Measurements with `unit` "" where the device sent none (dimensionless, spec v2), so rollups and queries
    group them like any other; the raw archive keeps what the device sent."""
    if all("unit" in m for m in items):
        return items
    return [m if "unit" in m else {**m, "unit": ""} for m in items]


class PostgresSeriesStore:
    """One row per datagram; a redelivered datagram hits the primary key and is ignored."""

    name = "postgres"

    def __init__(self, db: Database, *, retention_days: int = 90, page_size: int = 500,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._db = db
        self._retention_days = retention_days
        self._page_size = page_size
        self._clock = clock
        self._known: set[date] = set()
        self._lock = threading.Lock()

    def write(self, records: Sequence[SeriesRecord]) -> int:
        """Insert the datagrams newer than the retention cutoff; returns rows sent."""
        cutoff = retention_cutoff(self._clock(), self._retention_days)
        keep = [r for r in records if r.ts.date() >= cutoff]
        if len(keep) < len(records):
            metrics.SKIPPED.labels(WRITER, "expired").inc(len(records) - len(keep))
        if not keep:
            return 0
        rows = [(r.msg.device_id, r.ts, r.msg.msg_id, r.msg.device_type, r.msg.epoch, r.msg.seq,
                 orjson.dumps(_with_units(r.msg.readings)).decode(), r.received_at) for r in keep]
        self.ensure_partitions({r.ts.date() for r in keep})
        try:
            inserted = self._insert(rows)
        except psycopg2.errors.CheckViolation:
            # "no partition for row": another collector's retention dropped a partition we had cached.
            with self._lock:
                self._known.clear()
            self.ensure_partitions({r.ts.date() for r in keep})
            inserted = self._insert(rows)
        metrics.WRITTEN.labels(WRITER, "rows").inc(inserted)
        metrics.SKIPPED.labels(WRITER, "duplicate").inc(len(rows) - inserted)
        return len(rows)

    def _insert(self, rows: list[tuple]) -> int:
        with self._db.transaction() as cur:
            result = psycopg2.extras.execute_values(cur, INSERT + " RETURNING 1", rows, page_size=self._page_size,
                                                    fetch=True)
        return len(result)

    def ensure_partitions(self, days: set[date]) -> None:
        """Create the missing daily partitions (cached, so the common case costs nothing)."""
        with self._lock:
            missing = sorted(days - self._known)
        if not missing:
            return
        with self._db.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            for day in missing:
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                cur.execute(f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF telemetry "
                            "FOR VALUES FROM (%s) TO (%s)", (start, start + timedelta(days=1)))
        log.info("series partitions ready", extra={"days": [d.isoformat() for d in missing]})
        with self._lock:
            self._known.update(missing)

    def partitions(self) -> list[str]:
        """Names of the existing partitions."""
        with self._db.transaction() as cur:
            cur.execute(LIST_PARTITIONS)
            return sorted(row[0] for row in cur.fetchall())

    def apply_retention(self) -> list[str]:
        """Drop the partitions older than the retention period; returns their names."""
        cutoff = retention_cutoff(self._clock(), self._retention_days)
        dropped = []
        for name in expired_partitions(self.partitions(), cutoff):
            with self._db.transaction() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
                cur.execute("SET LOCAL lock_timeout = '10s'")  # never stall inserts for long
                cur.execute(f"DROP TABLE IF EXISTS {name}")
            dropped.append(name)
            metrics.RETENTION_DROPPED.inc()
            with self._lock:
                self._known.discard(partition_day(name))
        with self._db.transaction() as cur:  # the telemetry_1m rollup (migration 0160) is one table: trim it
            cur.execute("DELETE FROM telemetry_1m WHERE bucket < %s",
                        (datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC),))
            trimmed = cur.rowcount
        if dropped or trimmed:
            log.info("series retention applied", extra={"partitions": dropped, "rollup_rows": trimmed,
                                                        "cutoff": cutoff.isoformat()})
        return dropped
