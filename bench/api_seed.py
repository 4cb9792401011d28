# ruff: noqa: S608 - every interpolated SQL fragment is a constant of this module, values go as parameters
"""Seed the API benchmark database fast, entirely with server-side SQL (INSERT ... SELECT generate_series).

Devices: `devices` rows `apibench-000001`..., half power_meter_dc / half power_meter_ac, 70 % active, created_at one
second apart (so the default `-created_at` sort is deterministic). Telemetry: daily partitions over `days` days,
one datagram (3 measurements in the JSONB array, like a power_meter_dc) per device every `86400 / per_day` seconds,
inserted partition by partition in primary-key order (device_id, ts) so the index grows append-like. The "hot"
devices additionally have one full day of 10-s datagrams (8,640 rows) on the query day: that is what the one-day
1-minute-aggregate scenario reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg2

HOT_PREFIX = "apibench-hot-"
DEVICE_PREFIX = "apibench-"
DAY_ROWS_10S = 8640  # one full day of 10-s datagrams

# 3 metrics per datagram; values vary with the row so aggregates have something to average.
_MEASUREMENTS = """jsonb_build_array(
    jsonb_build_object('ts', {ts}, 'type', 'voltage_dc', 'val', 750 + mod({k}, 97) * 0.5, 'unit', 'V'),
    jsonb_build_object('ts', {ts}, 'type', 'current_dc', 'val', 120 + mod({k}, 41) * 1.5, 'unit', 'A'),
    jsonb_build_object('ts', {ts}, 'type', 'temperature', 'val', 20 + mod({k}, 23) * 0.25, 'unit', 'Cel'))"""


@dataclass(frozen=True)
class Plan:
    """What to seed; `per_day` datagrams per ordinary device and day, chosen to reach about `rows` rows."""

    devices: int
    rows: int
    days: int
    hot: int
    first_day: date

    @property
    def ordinary(self) -> int:
        """Devices that are not hot."""
        return self.devices - self.hot

    @property
    def per_day(self) -> int:
        """Datagrams per ordinary device per day."""
        return max(1, round((self.rows - self.hot * DAY_ROWS_10S) / (self.ordinary * self.days)))

    @property
    def query_day(self) -> date:
        """The day the hot devices report every 10 s (the middle of the range)."""
        return self.first_day + timedelta(days=self.days // 2)

    @property
    def expected_rows(self) -> int:
        """Rows the plan inserts."""
        return self.ordinary * self.days * self.per_day + self.hot * DAY_ROWS_10S


def make_plan(devices: int, rows: int, days: int = 10, hot: int = 8) -> Plan:
    """A plan whose days end yesterday (UTC), so 'now' never overlaps the data."""
    today = datetime.now(UTC).date()
    return Plan(devices, rows, days, hot, today - timedelta(days=days))


def _exec(cur, sql: str, params=None, label: str = "") -> float:
    t0 = time.perf_counter()
    cur.execute(sql, params)
    elapsed = time.perf_counter() - t0
    if label:
        print(f"  {label}: {elapsed:.1f} s", flush=True)
    return elapsed


def seed(dsn: str, plan: Plan) -> dict:
    """Insert devices and telemetry per the plan, then VACUUM ANALYZE; returns timings and counts."""
    t_start = time.perf_counter()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    timings = {}
    with conn.cursor() as cur:
        _exec(cur, "SET synchronous_commit = off")
        _exec(cur, "SET work_mem = '64MB'")
        _exec(cur, "SET maintenance_work_mem = '512MB'")
        timings["devices_s"] = _exec(cur, f"""
            INSERT INTO devices (device_id, name, serial_number, device_type_id, location, status,
                                 connection_status, last_seen, fw_version, metadata, created_at, updated_at)
            SELECT CASE WHEN i <= %(hot)s THEN '{HOT_PREFIX}' || lpad(i::text, 3, '0')
                        ELSE '{DEVICE_PREFIX}' || lpad(i::text, 6, '0') END,
                   'Meter ' || i, 'SN-' || lpad(i::text, 8, '0'),
                   CASE WHEN i <= %(hot)s OR mod(i, 2) = 0 THEN dc.id ELSE ac.id END,
                   'substation-' || mod(i, 500),
                   CASE WHEN i <= %(hot)s OR mod(i, 10) < 7 THEN 'active'
                        WHEN mod(i, 10) = 7 THEN 'inactive'
                        WHEN mod(i, 10) = 8 THEN 'maintenance' ELSE 'decommissioned' END,
                   CASE mod(i, 3) WHEN 0 THEN 'online' WHEN 1 THEN 'offline' ELSE 'unknown' END,
                   now() - mod(i, 3600) * interval '1 second', '1.' || mod(i, 7) || '.0',
                   jsonb_build_object('line', 'L' || mod(i, 12)),
                   now() - i * interval '1 second', now() - i * interval '1 second'
            FROM generate_series(1, %(n)s) i,
                 (SELECT id FROM device_types WHERE name = 'power_meter_dc') dc,
                 (SELECT id FROM device_types WHERE name = 'power_meter_ac') ac
        """, {"n": plan.devices, "hot": plan.hot}, "devices")
        t0 = time.perf_counter()
        for d in range(plan.days + 1):
            day = plan.first_day + timedelta(days=d)
            nxt = day + timedelta(days=1)
            _exec(cur, f"CREATE TABLE IF NOT EXISTS telemetry_p{day:%Y%m%d} PARTITION OF telemetry "
                       f"FOR VALUES FROM ('{day}') TO ('{nxt}')")
        timings["partitions_s"] = time.perf_counter() - t0
        step = 86400 // plan.per_day
        ts_expr = "(%(day)s::timestamptz + s * %(step)s * interval '1 second' + mod(i, %(step)s) * interval '1 second')"
        ordinary = _MEASUREMENTS.format(ts="tsv", k="(i + s)")
        t0 = time.perf_counter()
        for d in range(plan.days):
            day = plan.first_day + timedelta(days=d)
            # LATERAL keeps the device loop outermost: rows arrive in (device_id, ts) order, the PK's order.
            _exec(cur, f"""
                INSERT INTO telemetry (device_id, ts, msg_id, device_type, epoch, seq, measurements, received_at,
                                       stored_at)
                SELECT '{DEVICE_PREFIX}' || lpad(i::text, 6, '0'), tsv, gen_random_uuid(),
                       CASE WHEN mod(i, 2) = 0 THEN 'power_meter_dc' ELSE 'power_meter_ac' END,
                       1, %(dayno)s * %(per_day)s + s, {ordinary}, tsv + interval '50 milliseconds',
                       tsv + interval '80 milliseconds'
                FROM generate_series(%(lo)s, %(n)s) i,
                     LATERAL generate_series(0, %(per_day)s - 1) s,
                     LATERAL (SELECT {ts_expr} AS tsv) t
            """, {"lo": plan.hot + 1, "n": plan.devices, "per_day": plan.per_day, "step": step,
                  "day": datetime(day.year, day.month, day.day, tzinfo=UTC), "dayno": d},
                  f"telemetry {day} ({plan.ordinary * plan.per_day:,} rows)")
        hot_rows = _MEASUREMENTS.format(ts="tsv", k="s")
        _exec(cur, f"""
            INSERT INTO telemetry (device_id, ts, msg_id, device_type, epoch, seq, measurements, received_at, stored_at)
            SELECT '{HOT_PREFIX}' || lpad(i::text, 3, '0'), tsv, gen_random_uuid(), 'power_meter_dc', 1, s, {hot_rows},
                   tsv + interval '50 milliseconds', tsv + interval '80 milliseconds'
            FROM generate_series(1, %(hot)s) i,
                 LATERAL generate_series(0, {DAY_ROWS_10S - 1}) s,
                 LATERAL (SELECT %(day)s::timestamptz + s * interval '10 seconds' AS tsv) t
        """, {"hot": plan.hot, "day": datetime.combine(plan.query_day, datetime.min.time(), UTC)},
            f"telemetry hot devices ({plan.hot * DAY_ROWS_10S:,} rows on {plan.query_day})")
        timings["telemetry_s"] = time.perf_counter() - t0
        timings["vacuum_analyze_s"] = _exec(cur, "VACUUM (ANALYZE) devices, telemetry, telemetry_1m",
                                         label="VACUUM ANALYZE")
        cur.execute("SELECT count(*) FROM devices")
        n_devices = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM telemetry")
        n_rows = cur.fetchone()[0]
        cur.execute("SELECT pg_size_pretty(pg_total_relation_size('devices')), "
                    "(SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits "
                    " WHERE inhparent = 'telemetry'::regclass)")
        dev_size, tel_size = cur.fetchone()
    conn.close()
    timings["total_s"] = time.perf_counter() - t_start
    return {"devices": n_devices, "telemetry_rows": n_rows, "devices_size": dev_size, "telemetry_size": tel_size,
            "days": plan.days, "per_day": plan.per_day, "hot_devices": plan.hot, "query_day": str(plan.query_day),
            "timings": timings}


def describe(dsn: str) -> dict:
    """What an already seeded database holds (for --keep-db reuse)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM devices")
            n_devices = cur.fetchone()[0]
            # reltuples after VACUUM ANALYZE is exact enough and avoids scanning 10 M rows on every run.
            cur.execute("SELECT coalesce(sum(c.reltuples), 0)::bigint FROM pg_inherits i "
                        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'telemetry'::regclass")
            n_rows = cur.fetchone()[0]
            cur.execute("SELECT min(ts)::date FROM telemetry WHERE device_id = %s", (f"{HOT_PREFIX}001",))
            query_day = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM devices WHERE device_id LIKE %s", (HOT_PREFIX + "%",))
            hot = cur.fetchone()[0]
    finally:
        conn.close()
    return {"devices": n_devices, "telemetry_rows": n_rows, "query_day": str(query_day) if query_day else None,
            "hot_devices": hot, "reused": True}
