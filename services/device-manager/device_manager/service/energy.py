"""Energy reports from stored buckets (the collector integrates them, docs/metering.md): periods, units, coverage."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

RESOLUTIONS = ("hour", "day", "month")
UNITS = {"Wh": 1.0, "kWh": 1000.0}
QUANTITIES = ("consumed", "regenerated", "apparent", "reactive")
MAX_PERIODS = 10_000
HOUR = timedelta(hours=1)


class EnergyQueryError(ValueError):
    """A report the API must refuse with 422; `field` names the offending parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Sums(NamedTuple):
    """Energy in Wh (VAh, varh) and the sample-backed seconds of one period or range."""

    # A tuple: a month by hour builds 720 per request, and a frozen dataclass's __init__ cost three times as much.

    consumed: float = 0.0
    regenerated: float = 0.0
    apparent: float = 0.0
    reactive: float = 0.0
    covered_s: float = 0.0


def period_start(t: datetime, resolution: str) -> datetime:
    """The UTC hour, day or month holding t."""
    t = t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if resolution == "hour":
        return t
    t = t.replace(hour=0)
    return t if resolution == "day" else t.replace(day=1)


def next_period(t: datetime, resolution: str) -> datetime:
    """Start of the period after the one starting at t."""
    if resolution == "hour":
        return t + HOUR
    if resolution == "day":
        return t + timedelta(days=1)
    return t.replace(year=t.year + t.month // 12, month=t.month % 12 + 1)


def bounds(start: datetime | None, end: datetime | None, resolution: str,
           now: datetime | None = None) -> tuple[datetime, datetime]:
    """A validated [start, end) of whole UTC hours; default the 24 hours up to the current hour's end."""
    if resolution not in RESOLUTIONS:
        raise EnergyQueryError("resolution", f"must be one of {', '.join(RESOLUTIONS)}")
    end = (end or period_start(now or datetime.now(UTC), "hour") + HOUR).astimezone(UTC)
    start = (start or end - timedelta(days=1)).astimezone(UTC)  # UTC bounds: one cached period list per instant
    for name, t in (("start", start), ("end", end)):
        if t != period_start(t, "hour"):  # buckets nest in whole hours, so coverage and sums are exact
            raise EnergyQueryError(name, "must be a whole UTC hour")
    if start >= end:
        raise EnergyQueryError("start", "must be before end")
    if _count(start, end, resolution) > MAX_PERIODS:
        raise EnergyQueryError("end", f"more than {MAX_PERIODS} periods; use a coarser resolution")
    return start, end


def _count(start: datetime, end: datetime, resolution: str) -> int:
    """How many periods of the resolution [start, end) touches (arithmetic: a range may span a century of hours)."""
    first, last = period_start(start, resolution), period_start(end - HOUR, resolution)
    if resolution == "hour":
        return int((last - first) / HOUR) + 1
    if resolution == "day":
        return (last - first).days + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


def report(sums: dict[datetime, Sums], start: datetime, end: datetime, resolution: str, unit: str,
           devices: int) -> dict:
    """Every period of the range (empty ones too), scaled to the unit, with coverage per device-second."""
    scale, empty = UNITS[unit], Sums()
    intervals = [_interval(lo, hi, sums.get(key, empty), scale, span_s * devices)
                 for key, lo, hi, span_s in _periods(start, end, resolution)]
    total = Sums(*(sum(column) for column in zip(*sums.values(), strict=True))) if sums else empty
    return {"start": start, "end": end, "resolution": resolution, "unit": unit, "units": units_of(unit),
            "devices": devices, "total": _interval(start, end, total, scale, (end - start).total_seconds() * devices),
            "intervals": intervals}


@functools.lru_cache(maxsize=8)  # 10,000 periods at most, ~1.5 MB each: ~12 MB per worker at worst
def _periods(start: datetime, end: datetime, resolution: str) -> tuple[tuple[datetime, datetime, datetime, float], ...]:
    """(period key, clipped start, clipped end, seconds) of each period; dashboards ask for the same ranges again."""
    out, t = [], period_start(start, resolution)
    while t < end:
        nxt = next_period(t, resolution)
        lo, hi = max(t, start), min(nxt, end)
        out.append((t, lo, hi, (hi - lo).total_seconds()))
        t = nxt
    # Periods outside [start, end) are never asked for (bounds() keeps start and end on whole hours).
    return tuple(out)


def units_of(unit: str) -> dict[str, str]:
    """Unit of each quantity: active Wh/kWh, apparent VAh/kVAh, reactive varh/kvarh."""
    prefix = "k" if unit == "kWh" else ""
    return {"active": f"{prefix}Wh", "apparent": f"{prefix}VAh", "reactive": f"{prefix}varh"}


def register(sums: Sums, unit: str) -> dict:
    """Cumulative registers in the unit."""
    scale = UNITS[unit]
    return {"unit": unit, "units": units_of(unit), "consumed": sums.consumed / scale,
            "regenerated": sums.regenerated / scale, "net": (sums.consumed - sums.regenerated) / scale,
            "apparent": sums.apparent / scale, "reactive": sums.reactive / scale}


def _interval(lo: datetime, hi: datetime, s: Sums, scale: float, span_s: float) -> dict:
    """A period's (or the range's) bounds and amounts in the unit, one dict per period: a month by hour has 720."""
    return {"start": lo, "end": hi, "consumed": s.consumed / scale, "regenerated": s.regenerated / scale,
            "net": (s.consumed - s.regenerated) / scale, "apparent": s.apparent / scale,
            "reactive": s.reactive / scale, "covered_s": s.covered_s,
            "coverage": (1.0 if s.covered_s >= span_s else s.covered_s / span_s) if span_s > 0 else 0.0}
