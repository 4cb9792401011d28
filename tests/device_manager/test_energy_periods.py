"""The pure period arithmetic behind energy reports: counting, clipping and the period limit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_manager.service import energy

H = timedelta(hours=1)
HOURS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda t: t.replace(minute=0, second=0, microsecond=0, tzinfo=UTC))


def _walk(start, end, resolution):
    """The periods of [start, end) by stepping, the definition the arithmetic must agree with."""
    t, out = energy.period_start(start, resolution), []
    while t < end:
        out.append(t)
        t = energy.next_period(t, resolution)
    return out


@given(HOURS, st.integers(min_value=1, max_value=4000), st.sampled_from(energy.RESOLUTIONS))
def test_counting_agrees_with_stepping(start, hours, resolution):
    end = start + hours * H
    assert energy._count(start, end, resolution) == len(_walk(start, end, resolution))


@given(HOURS, st.integers(min_value=1, max_value=2000), st.sampled_from(energy.RESOLUTIONS))
def test_every_hour_of_the_range_is_in_exactly_one_clipped_period(start, hours, resolution):
    end = start + hours * H
    periods = energy._periods(start, end, resolution)
    assert [p[0] for p in periods] == _walk(start, end, resolution)
    assert periods[0][1] == start and periods[-1][2] == end
    assert all(a[2] == b[1] for a, b in itertools.pairwise(periods))
    assert sum(p[3] for p in periods) == (end - start).total_seconds()


def test_the_period_limit_is_exact():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert energy.bounds(start, start + energy.MAX_PERIODS * H, "hour") == (start, start + energy.MAX_PERIODS * H)
    with pytest.raises(energy.EnergyQueryError, match="more than 10000 periods"):
        energy.bounds(start, start + (energy.MAX_PERIODS + 1) * H, "hour")
    # A day resolution counts a partial first and last day as periods.
    assert energy._count(start + 23 * H, start + 25 * H, "day") == 2


def test_report_scales_sums_and_caps_coverage():
    start = datetime(2026, 3, 1, tzinfo=UTC)
    sums = {start: energy.Sums(2000.0, 500.0, 2500.0, 100.0, 3600.0),
            start + H: energy.Sums(1000.0, 0.0, 1000.0, 0.0, 1800.0)}
    out = energy.report(sums, start, start + 3 * H, "hour", "kWh", 1)
    first, second, third = out["intervals"]
    assert (first["consumed"], first["regenerated"], first["net"], first["coverage"]) == (2.0, 0.5, 1.5, 1.0)
    assert (second["coverage"], third["coverage"], third["consumed"]) == (0.5, 0.0, 0.0)
    assert out["total"]["consumed"] == 3.0 and out["total"]["coverage"] == pytest.approx(5400 / 10800)
