"""Telemetry from PostgreSQL: whole-minute aggregates from the `telemetry_1m` rollup, the rest from the
partitioned `telemetry` table (one row per datagram, measurements unnested in SQL)."""

from __future__ import annotations

from datetime import timedelta

from device_manager.telemetry.query import ORIGIN, Latest, Point, Series, TelemetryQuery, TooManyPoints
from iothub.db import Database

# SQL expression per aggregate; "last" is the value with the newest measurement time in the bucket.
_AGG_SQL = {
    "mean": "avg(m.val)",
    "min": "min(m.val)",
    "max": "max(m.val)",
    "count": "count(*)",
    "last": "(array_agg(m.val ORDER BY m.ts DESC, t.ts DESC, t.seq DESC))[1]",
}
# The same aggregates over the one-minute rollup rows (migration 0160), which nest inside any whole-minute bucket.
_ROLLUP_AGG_SQL = {
    "mean": "sum(r.sum) / sum(r.n)::double precision",
    "min": "min(r.min)",
    "max": "max(r.max)",
    "count": "sum(r.n)",
    "last": "(array_agg(r.last_val ORDER BY r.last_ts DESC, r.last_env_ts DESC, r.last_seq DESC))[1]",
}
_ROLLUP = """
SELECT r.metric, r.unit, date_bin(%(every)s, r.bucket, %(origin)s) AS bucket, {agg}
FROM telemetry_1m r
WHERE r.device_id = %(device_id)s AND r.bucket >= %(start)s AND r.bucket < %(end)s
  AND (%(all_metrics)s OR r.metric = ANY(%(metrics)s))
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
MINUTE = timedelta(minutes=1)
_FROM = """
FROM telemetry t
CROSS JOIN LATERAL jsonb_to_recordset(t.measurements)
     AS m(ts timestamptz, type text, val double precision, unit text)
WHERE t.device_id = %(device_id)s
  AND t.ts >= %(lo)s AND t.ts < %(hi)s
  AND m.ts >= %(start)s AND m.ts < %(end)s
  AND (%(all_metrics)s OR m.type = ANY(%(metrics)s))
"""


class PostgresSeries:
    """SeriesReader over the `telemetry` table.

    A datagram's measurements are taken before its envelope ts (the partition key), so the partition filter
    reaches `slack` past the end of the range, and `skew` before its start for device clocks that stamp the
    envelope a little early; the exact range then applies to each measurement's own ts.
    """

    def __init__(self, db: Database, *, slack: timedelta = timedelta(minutes=15),
                 skew: timedelta = timedelta(minutes=1), latest_datagrams: int = 500):
        self._db = db
        self._slack = slack
        self._skew = skew
        self._latest_datagrams = latest_datagrams

    def query(self, q: TelemetryQuery) -> list[Series]:
        """Raw points or aggregates per epoch-aligned bucket (date_bin), grouped by (metric, unit)."""
        params = {"device_id": q.device_id, "lo": q.start - self._skew, "hi": q.end + self._slack,
                  "start": q.start, "end": q.end, "all_metrics": not q.metrics, "metrics": list(q.metrics)}
        if q.every is None:
            sql = f"SELECT m.type, m.unit, m.ts, m.val {_FROM} ORDER BY m.type, m.unit, m.ts LIMIT %(limit)s"
            params["limit"] = q.max_points + 1
        elif _whole_minutes(q):
            sql = _ROLLUP.format(agg=_ROLLUP_AGG_SQL[q.agg])
            params.update(every=q.every, origin=ORIGIN)
        else:
            sql = (f"SELECT m.type, m.unit, date_bin(%(every)s, m.ts, %(origin)s) AS bucket, {_AGG_SQL[q.agg]}"
                   f" {_FROM} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
            params.update(every=q.every, origin=ORIGIN)
        with self._db.transaction() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        if q.every is None and len(rows) > q.max_points:
            raise TooManyPoints("every", f"more than {q.max_points} raw points in the range; "
                                         "aggregate with every/agg or shorten the range")
        return _group(rows, integer=q.every is not None and q.agg == "count")

    def latest(self, device_id: str, metrics: tuple[str, ...] = ()) -> list[Latest]:
        """Newest value per metric among the device's most recent datagrams (an index scan, not a full scan)."""
        sql = """
            SELECT DISTINCT ON (m.type) m.type, m.unit, m.ts, m.val
            FROM (SELECT ts, seq, measurements FROM telemetry WHERE device_id = %(device_id)s
                  ORDER BY ts DESC LIMIT %(limit)s) t
            CROSS JOIN LATERAL jsonb_to_recordset(t.measurements)
                 AS m(ts timestamptz, type text, val double precision, unit text)
            WHERE %(all_metrics)s OR m.type = ANY(%(metrics)s)
            ORDER BY m.type, m.ts DESC, t.ts DESC, t.seq DESC
        """
        params = {"device_id": device_id, "limit": self._latest_datagrams, "all_metrics": not metrics,
                  "metrics": list(metrics)}
        with self._db.transaction() as cur:
            cur.execute(sql, params)
            return [Latest(metric, unit, ts, float(val)) for metric, unit, ts, val in cur.fetchall()]


def _whole_minutes(q: TelemetryQuery) -> bool:
    """Whether the rollup answers the query: minute buckets nest in its buckets and its range."""
    return q.every % MINUTE == timedelta(0) and all((t - ORIGIN) % MINUTE == timedelta(0) for t in (q.start, q.end))


def _group(rows: list[tuple], *, integer: bool) -> list[Series]:
    out: list[Series] = []
    for metric, unit, ts, value in rows:
        if not out or (out[-1].metric, out[-1].unit) != (metric, unit):
            out.append(Series(metric, unit))
        out[-1].points.append(Point(ts, int(value) if integer else float(value)))
    return out
