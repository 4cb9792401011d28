"""The energy scenario of bench.api: one device's energy over one month (30 days) at hourly resolution.

Seeds (idempotently, also on a kept database) 30 days of 5-minute energy buckets for every hot device and their
hourly sums, as the collector's energy writer stores them (8,640 + 720 rows per device), and gives the paths and
the in-process SQL floor call.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg2

from bench.api_seed import HOT_PREFIX

SCENARIO = "energy_1mo_1h"
BAR_MS = 100
DAYS = 30
SEED = """
INSERT INTO energy_buckets (device_id, bucket, bucket_end, device_type, consumed_wh, regenerated_wh, apparent_vah,
                            reactive_varh, covered_s, samples)
SELECT d.device_id, b, b + interval '5 minutes', 'power_meter_dc', 25000 + mod(extract(epoch FROM b)::bigint, 97),
       mod(extract(epoch FROM b)::bigint, 13), 0, 0, 300, 300
FROM devices d, generate_series(%(start)s, %(end)s - interval '5 minutes', interval '5 minutes') b
WHERE d.device_id LIKE %(hot)s
ON CONFLICT (device_id, bucket) DO NOTHING
"""
# The hourly sums the energy writer keeps beside the buckets (what the endpoint reads).
HOURS = """
INSERT INTO energy_hours (device_id, hour, device_type, consumed_wh, regenerated_wh, apparent_vah, reactive_varh,
                          covered_s, samples)
SELECT device_id, date_bin('1 hour', bucket, '1970-01-01Z'), min(device_type), sum(consumed_wh), sum(regenerated_wh),
       sum(apparent_vah), sum(reactive_varh), sum(covered_s), sum(samples)
FROM energy_buckets WHERE device_id LIKE %(hot)s AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY 1, 2
ON CONFLICT (device_id, hour) DO NOTHING
"""


def month(query_day: str) -> tuple[datetime, datetime]:
    """The 30 days up to the benchmark's query day."""
    end = datetime.fromisoformat(query_day).replace(tzinfo=UTC)
    return end - timedelta(days=DAYS), end


def seed(dsn: str, query_day: str) -> int:
    """Energy buckets for the hot devices over the month; returns rows added (0 when already there)."""
    start, end = month(query_day)
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            params = {"start": start, "end": end, "hot": HOT_PREFIX + "%"}
            cur.execute(SEED, params)
            added = cur.rowcount
            cur.execute(HOURS, params)
            return added
    finally:
        conn.close()


def paths(hot: list[tuple[str, str]], query_day: str) -> list[str]:
    """One request per hot device: GET /devices/{id}/energy for the month by hour."""
    start, end = month(query_day)
    qs = f"start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}&resolution=hour&unit=kWh"
    return [f"/api/v1/devices/{pk}/energy?{qs}" for pk, _ in hot]


def check(body: dict) -> dict:
    """The answer has every hour of the month, fully covered."""
    assert len(body["intervals"]) == DAYS * 24 and body["total"]["coverage"] == 1.0, body["total"]
    return {"intervals": len(body["intervals"])}


def floor_call(db, hot: list[tuple[str, str]], query_day: str, rng: random.Random) -> Callable[[], object]:
    """The repository call and report behind the endpoint, without HTTP."""
    from device_manager.repositories.energy import EnergyRepository
    from device_manager.service import energy

    repo, (start, end) = EnergyRepository(db), month(query_day)

    def call():
        device_id = rng.choice(hot)[1]
        return energy.report(repo.periods([device_id], None, start, end, "hour"), start, end, "hour", "kWh", 1)

    return call
