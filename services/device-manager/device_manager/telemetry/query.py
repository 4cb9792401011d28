"""Telemetry queries: the request, its bounds, the response shape and the port every series backend implements."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

AGGREGATES = ("mean", "min", "max", "last", "count")
EVERY_RE = re.compile(r"^([1-9][0-9]{0,5})(s|m|h|d)$")
METRIC_RE = re.compile(r"^[^\x00-\x1f]{1,64}$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Buckets are aligned to the Unix epoch, as Flux's aggregateWindow aligns them by default.
ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)


class QueryError(ValueError):
    """A query the API must refuse with 422; `field` names the offending parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask for."""

    max_range: timedelta = timedelta(days=31)
    max_points: int = 10_000
    default_range: timedelta = timedelta(hours=1)
    max_metrics: int = 20


@dataclass(frozen=True)
class TelemetryQuery:
    """A validated request: half-open range [start, end) on measurement time; every=None means raw points."""

    device_id: str
    start: datetime
    end: datetime
    metrics: tuple[str, ...] = ()
    every: timedelta | None = None
    agg: str = "mean"
    max_points: int = 10_000

    @property
    def every_seconds(self) -> int | None:
        """Bucket width in whole seconds."""
        return None if self.every is None else int(self.every.total_seconds())


@dataclass(frozen=True)
class Point:
    """One value at one time (a bucket's start when aggregated)."""

    ts: datetime
    value: float


@dataclass
class Series:
    """All points of one metric in one unit, oldest first."""

    metric: str
    unit: str
    points: list[Point] = field(default_factory=list)


@dataclass(frozen=True)
class Latest:
    """The newest value of one metric."""

    metric: str
    unit: str
    ts: datetime
    value: float


class TooManyPoints(QueryError):
    """A raw query matched more points than a response may carry."""


class SeriesReader(Protocol):
    """What every series backend (PostgreSQL, InfluxDB) offers the API."""

    def query(self, q: TelemetryQuery) -> list[Series]:
        """Raw points or per-bucket aggregates, one Series per (metric, unit), sorted by metric then unit."""
        ...

    def latest(self, device_id: str, metrics: tuple[str, ...] = ()) -> list[Latest]:
        """The newest value of every metric (or of the given ones), sorted by metric."""
        ...


def parse_every(text: str) -> timedelta:
    """Parse a bucket width such as 30s, 5m, 1h or 1d."""
    match = EVERY_RE.match(text or "")
    if not match:
        raise QueryError("every", "must be a positive duration such as 30s, 5m, 1h or 1d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_every(every: timedelta | None) -> str | None:
    """Render a bucket width in the largest whole unit (300s -> 5m)."""
    if every is None:
        return None
    seconds = int(every.total_seconds())
    for suffix in ("d", "h", "m"):
        if seconds % _UNITS[suffix] == 0:
            return f"{seconds // _UNITS[suffix]}{suffix}"
    return f"{seconds}s"


def build_query(device_id: str, *, start: datetime | None, end: datetime | None, metrics: tuple[str, ...] = (),
                every: str | timedelta | None = None, agg: str | None = None, now: datetime | None = None,
                limits: Limits = Limits()) -> TelemetryQuery:
    """Fill defaults (the last hour) and enforce the bounds; raises QueryError."""
    end = _aware(end, "end") if end is not None else (now or datetime.now(UTC))
    start = _aware(start, "start") if start is not None else end - limits.default_range
    if start >= end:
        raise QueryError("start", "must be before end")
    if end - start > limits.max_range:
        raise QueryError("end", f"range is longer than the maximum of {limits.max_range.days} days")
    metrics = tuple(dict.fromkeys(metrics))
    if len(metrics) > limits.max_metrics:
        raise QueryError("metric", f"at most {limits.max_metrics} metrics per query")
    for metric in metrics:
        if not METRIC_RE.match(metric):
            raise QueryError("metric", "must be 1 to 64 printable characters")
    if agg is not None and agg not in AGGREGATES:
        raise QueryError("agg", f"must be one of {', '.join(AGGREGATES)}")
    width = parse_every(every) if isinstance(every, str) else every
    if width is None and agg is not None:
        raise QueryError("agg", "needs every (the bucket width)")
    if width is not None:
        buckets = math.ceil((end - start) / width)
        if buckets > limits.max_points:
            raise QueryError("every", f"{buckets} buckets per metric exceed the maximum of {limits.max_points}; "
                                      "use a wider bucket or a shorter range")
    return TelemetryQuery(device_id, start, end, metrics, width, agg or "mean", limits.max_points)


def bucket_start(ts: datetime, every: timedelta) -> datetime:
    """The epoch-aligned start of the bucket holding ts (what date_bin computes)."""
    return ts - (ts - ORIGIN) % every


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise QueryError(name, "must carry a UTC offset")
    return value.astimezone(UTC)


def series_to_dict(q: TelemetryQuery, series: list[Series]) -> dict:
    """The response of a telemetry query, identical for every backend (times stay datetimes for the schema)."""
    return {
        "device_id": q.device_id,
        "start": q.start,
        "end": q.end,
        "every": format_every(q.every),
        "agg": q.agg if q.every is not None else None,
        "series": [{"metric": s.metric, "unit": s.unit,
                    "points": [{"ts": p.ts, "value": p.value} for p in s.points]} for s in series],
    }


def latest_to_dict(device_id: str, values: list[Latest]) -> dict:
    """The response of a latest-values query."""
    return {"device_id": device_id,
            "metrics": [{"metric": v.metric, "unit": v.unit, "ts": v.ts, "value": v.value} for v in values]}
