"""Energy per period (hourly sums) and registers (buckets, samples) from the energy writer's tables (migration 0170)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime

from device_manager.service.energy import Sums
from iothub.db import Database

_SUMS = "sum(consumed_wh), sum(regenerated_wh), sum(apparent_vah), sum(reactive_varh), sum(covered_s)"
# Period starts come back as epoch seconds: psycopg2 parses a timestamptz in ~1 us, a month by hour has 720.
PERIODS = f"""
SELECT extract(epoch FROM date_trunc(%(resolution)s, hour, 'UTC'))::bigint AS period, {_SUMS}
FROM energy_hours
WHERE (%(all_devices)s OR device_id = ANY(%(device_ids)s))
  AND (%(device_type)s::text IS NULL OR device_type = %(device_type)s)
  AND hour >= %(start)s AND hour < %(end)s
GROUP BY 1
"""  # noqa: S608 -- _SUMS is a constant
# One device by hour: its hourly rows are the periods already, so no grouping (a month: 0.15 ms instead of 1.4 ms).
DEVICE_HOURS = """
SELECT extract(epoch FROM hour)::bigint, consumed_wh, regenerated_wh, apparent_vah, reactive_varh, covered_s
FROM energy_hours WHERE device_id = %(device_id)s AND hour >= %(start)s AND hour < %(end)s
"""
# Whole buckets before `at`, plus the in-bucket part of the segments of the current bucket's samples up to `at`.
REGISTER = """
WITH cur AS (SELECT bucket FROM energy_buckets
             WHERE device_id = %(device_id)s AND bucket <= %(at)s AND bucket_end > %(at)s),
past AS (SELECT coalesce(sum(consumed_wh), 0) AS c, coalesce(sum(regenerated_wh), 0) AS r,
                coalesce(sum(apparent_vah), 0) AS a, coalesce(sum(reactive_varh), 0) AS q
         FROM energy_buckets WHERE device_id = %(device_id)s AND bucket_end <= %(at)s),
part AS (SELECT coalesce(sum(own_consumed_wh), 0) AS c, coalesce(sum(own_regenerated_wh), 0) AS r,
                coalesce(sum(own_apparent_vah), 0) AS a, coalesce(sum(own_reactive_varh), 0) AS q
         FROM energy_samples WHERE device_id = %(device_id)s AND ts >= (SELECT bucket FROM cur) AND ts <= %(at)s)
SELECT past.c + part.c, past.r + part.r, past.a + part.a, past.q + part.q,
       (SELECT max(ts) FROM energy_samples WHERE device_id = %(device_id)s AND ts <= %(at)s)
FROM past, part
"""
DEVICES = """
SELECT count(*) FROM devices d JOIN device_types t ON t.id = d.device_type_id
WHERE %(device_type)s::text IS NULL OR t.name = %(device_type)s
"""


class EnergyRepository:
    """EnergyReader on PostgreSQL, plus register readings and fleet sizes."""

    def __init__(self, db: Database):
        self.db = db

    def periods(self, device_ids: Sequence[str] | None, device_type: str | None, start: datetime, end: datetime,
                resolution: str) -> dict[datetime, Sums]:
        """Bucket sums per UTC period start of the devices (None: all) of the type (None: any)."""
        params = {"resolution": resolution, "all_devices": device_ids is None, "device_ids": list(device_ids or ()),
                  "device_type": device_type, "start": start, "end": end}
        one_by_hour = resolution == "hour" and device_type is None and device_ids is not None and len(device_ids) == 1
        if one_by_hour:
            params["device_id"] = device_ids[0]
        with self.db.read() as cur:
            cur.execute(DEVICE_HOURS if one_by_hour else PERIODS, params)
            return {_instant(row[0]): Sums(*row[1:]) for row in cur.fetchall()}

    def register(self, device_id: str, at: datetime) -> tuple[Sums, datetime | None]:
        """Cumulative energy of a device up to its last sample at or before `at`, and that sample's time."""
        with self.db.read() as cur:
            cur.execute(REGISTER, {"device_id": device_id, "at": at})
            c, r, a, q, as_of = cur.fetchone()
        return Sums(c, r, a, q), as_of

    def device_count(self, device_type: str | None) -> int:
        """Registered devices of the type (None: every device)."""
        with self.db.read() as cur:
            cur.execute(DEVICES, {"device_type": device_type})
            return cur.fetchone()[0]

    def type_exists(self, name: str) -> bool:
        """Whether a device type of that name is registered."""
        with self.db.read() as cur:
            cur.execute("SELECT 1 FROM device_types WHERE name = %s", (name,))
            return cur.fetchone() is not None


@functools.lru_cache(maxsize=65_536)
def _instant(epoch: int) -> datetime:
    """A period start as an aware UTC datetime; reports reuse the same hours, so each is built once per process."""
    return datetime.fromtimestamp(epoch, UTC)
