"""Energy store on PostgreSQL (migration 0170): `energy_samples` rows with their segments, `energy_buckets` sums."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg2.extras

from collector.metering.energy import Amounts, Sample, Segment
from collector.writers.energy import Window
from iothub.db import Database

ENERGY_LOCK = 0x0E0E  # advisory lock class: one writer at a time per device, so re-sums see every committed sample
QUANTITIES = ("consumed_wh", "regenerated_wh", "apparent_vah", "reactive_varh", "covered_s")
_OWN = ", ".join(f"own_{q}" for q in QUANTITIES)
_CARRY = ", ".join(f"carry_{q}" for q in QUANTITIES)

LOCK = """
SELECT count(pg_advisory_xact_lock(%s, hashtext(d)))
FROM (SELECT d FROM unnest(%s::text[]) AS d ORDER BY d) ordered
"""
WINDOW = """
SELECT s.device_id, extract(epoch FROM s.ts)::double precision, s.p, s.s, s.q
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(device_id, lo, hi)
JOIN energy_samples s ON s.device_id = w.device_id AND s.ts >= w.lo AND s.ts <= w.hi
"""
_COLUMNS = f"p, s, q, {_OWN}, {_CARRY}"
_EXCLUDED = ", ".join("EXCLUDED." + c for c in _COLUMNS.split(", "))
UPSERT = f"""
INSERT INTO energy_samples (device_id, ts, {_COLUMNS}) VALUES %s
ON CONFLICT (device_id, ts) DO UPDATE SET ({_COLUMNS}) = ROW({_EXCLUDED})
"""  # noqa: S608 -- names are this module's constants
# A bucket is its samples' own parts plus the carry of the next bucket's samples (only its first has any).
_SUMS = ", ".join(f"coalesce(sum(s.own_{q}) FILTER (WHERE s.ts < w.bucket + %(span)s), 0)"
                  f" + coalesce(sum(s.carry_{q}) FILTER (WHERE s.ts >= w.bucket + %(span)s), 0)" for q in QUANTITIES)
# Every (device, bucket) a batch touched, in one statement: the primary key's order is the lock order.
REFRESH = f"""
INSERT INTO energy_buckets AS b (device_id, bucket, bucket_end, device_type, {", ".join(QUANTITIES)}, samples)
SELECT w.device_id, w.bucket, w.bucket + %(span)s, w.device_type, {_SUMS},
       count(*) FILTER (WHERE s.ts < w.bucket + %(span)s)
FROM unnest(%(device_ids)s::text[], %(device_types)s::text[], %(buckets)s::timestamptz[])
     AS w(device_id, device_type, bucket)
JOIN energy_samples s ON s.device_id = w.device_id AND s.ts >= w.bucket AND s.ts < w.bucket + 2 * %(span)s
GROUP BY w.device_id, w.device_type, w.bucket
ORDER BY w.device_id, w.bucket
ON CONFLICT (device_id, bucket) DO UPDATE SET
    ({", ".join(QUANTITIES)}, samples, device_type, updated_at) =
    ({", ".join(f"EXCLUDED.{q}" for q in QUANTITIES)}, EXCLUDED.samples, EXCLUDED.device_type, now())
"""  # noqa: S608 -- names are this module's constants

# The hours of the re-summed buckets, each the sum of its buckets (so as idempotent as they are).
_TOTALS = ", ".join(f"sum(b.{q})" for q in QUANTITIES)
HOURS = f"""
INSERT INTO energy_hours (device_id, hour, device_type, {", ".join(QUANTITIES)}, samples)
SELECT h.device_id, h.hour, h.device_type, {_TOTALS}, sum(b.samples)
FROM (SELECT DISTINCT w.device_id, w.device_type, date_bin('1 hour', w.bucket, '1970-01-01Z') AS hour
      FROM unnest(%(device_ids)s::text[], %(device_types)s::text[], %(buckets)s::timestamptz[])
           AS w(device_id, device_type, bucket)) h
JOIN energy_buckets b ON b.device_id = h.device_id AND b.bucket >= h.hour AND b.bucket < h.hour + interval '1 hour'
GROUP BY h.device_id, h.device_type, h.hour
ORDER BY h.device_id, h.hour
ON CONFLICT (device_id, hour) DO UPDATE SET
    ({", ".join(QUANTITIES)}, samples, device_type) =
    ({", ".join(f"EXCLUDED.{q}" for q in QUANTITIES)}, EXCLUDED.samples, EXCLUDED.device_type)
"""  # noqa: S608 -- names are this module's constants


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _values(a: Amounts) -> tuple[float, ...]:
    return a.consumed_wh, a.regenerated_wh, a.apparent_vah, a.reactive_varh, a.covered_s


class PostgresEnergySession:
    """An open transaction with the devices locked."""

    def __init__(self, cur, span_s: float):
        self._cur = cur
        self._span = timedelta(seconds=span_s)

    def samples(self, windows: Sequence[Window]) -> dict[str, list[Sample]]:
        """Stored samples inside each window."""
        self._cur.execute(WINDOW, ([w.device_id for w in windows], [_at(w.lo) for w in windows],
                                   [_at(w.hi) for w in windows]))
        out: dict[str, list[Sample]] = {}
        for device_id, t, p, s, q in self._cur.fetchall():
            # Through datetime like new samples (microseconds), so the same instant compares equal.
            out.setdefault(device_id, []).append(Sample(_at(t).timestamp(), p, s, q))
        return out

    def write(self, segments: dict[str, Sequence[Segment]]) -> None:
        """Insert or overwrite the devices' samples with their segments, all in one statement per 1,000 rows."""
        rows = [(device_id, _at(g.sample.t), g.sample.p, g.sample.s, g.sample.q, *_values(g.own), *_values(g.carry))
                for device_id in sorted(segments) for g in sorted(segments[device_id], key=lambda g: g.sample.t)]
        psycopg2.extras.execute_values(self._cur, UPSERT, rows, page_size=1000)

    def refresh(self, buckets: dict[str, tuple[str, Sequence[float]]]) -> None:
        """Re-sum the buckets (device_id -> (device_type, bucket starts)) from samples, then their hours."""
        # Two statements for the whole batch, however many devices it holds.
        wanted = [(d, t, _at(b)) for d, (t, starts) in sorted(buckets.items()) for b in sorted(starts)]
        params = {"span": self._span, "device_ids": [w[0] for w in wanted], "device_types": [w[1] for w in wanted],
                  "buckets": [w[2] for w in wanted]}
        self._cur.execute(REFRESH, params)
        self._cur.execute(HOURS, params)


class PostgresEnergyStore:
    """EnergyStore on the shared database."""

    def __init__(self, db: Database, *, bucket_s: float):
        self._db = db
        self._bucket_s = bucket_s

    @contextmanager
    def session(self, device_ids: Sequence[str]) -> Iterator[PostgresEnergySession]:
        """A transaction holding every named device's lock (taken in sorted order: no deadlock between writers)."""
        with self._db.transaction() as cur:
            cur.execute(LOCK, (ENERGY_LOCK, sorted(device_ids)))
            yield PostgresEnergySession(cur, self._bucket_s)
