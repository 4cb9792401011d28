"""Telemetry backends: PostgreSQL aggregates equal what Python computes from the rows written; Flux contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from device_manager.telemetry import Limits, QueryError, TooManyPoints, build_query
from device_manager.telemetry.influx import InfluxSeries, build_flux, flux_string
from device_manager.telemetry.postgres import PostgresSeries
from device_manager.telemetry.query import parse_every
from tests.device_manager.ops_data import (
    BASE,
    expected,
    influx_settings,
    insert_datagrams,
    make_datagrams,
    write_influx,
)


@pytest.fixture(scope="module")
def dataset(db):
    """Two devices with interleaved data; returns (device_id, its flat readings)."""
    device_id = f"tel-{uuid.uuid4().hex[:8]}"
    rows, flat = make_datagrams(device_id, seed=7)
    other_rows, _ = make_datagrams(f"{device_id}-other", seed=8)
    insert_datagrams(db, rows + other_rows)
    return device_id, flat


def as_dict(series):
    return {(s.metric, s.unit): {p.ts: p.value for p in s.points} for s in series}


# Whole-minute bounds and buckets are answered from the telemetry_1m rollup, the others from the raw rows.
BOUNDS = {"raw": (timedelta(minutes=10, seconds=7), timedelta(minutes=51, seconds=13)),
          "rollup": (timedelta(minutes=10), timedelta(minutes=51))}


@pytest.mark.parametrize("agg", ["mean", "min", "max", "last", "count"])
@pytest.mark.parametrize("every", ["5m", "1m", "7m", "1h", "90s"])
@pytest.mark.parametrize("bounds", ["raw", "rollup"])
def test_postgres_aggregates_equal_python(db, dataset, agg, every, bounds):
    device_id, flat = dataset
    start, end = (BASE + offset for offset in BOUNDS[bounds])
    q = build_query(device_id, start=start, end=end, every=every, agg=agg)
    got = as_dict(PostgresSeries(db).query(q))
    want = expected(flat, start, end, every=parse_every(every), agg=agg)
    assert got.keys() == want.keys() == {("voltage_dc", "V"), ("temperature", "Cel"), ("current_dc", "A")}
    for key, buckets in want.items():
        assert got[key].keys() == buckets.keys(), key
        for bucket, value in buckets.items():
            assert got[key][bucket] == pytest.approx(value, rel=1e-12), (key, bucket)
    if agg == "count":
        assert all(isinstance(v, int) for per in got.values() for v in per.values())
        assert sum(sum(per.values()) for per in got.values()) == sum(1 for ts, *_ in flat if start <= ts < end)


def test_postgres_raw_points_metric_filter_and_order(db, dataset):
    device_id, flat = dataset
    start, end = BASE + timedelta(minutes=3, seconds=1), BASE + timedelta(minutes=9)
    q = build_query(device_id, start=start, end=end, metrics=("temperature", "current_dc"))
    series = PostgresSeries(db).query(q)
    assert [(s.metric, s.unit) for s in series] == [("current_dc", "A"), ("temperature", "Cel")]
    for s in series:
        want = sorted((ts, val) for ts, kind, val, _ in flat if kind == s.metric and start <= ts < end)
        assert [(p.ts, p.value) for p in s.points] == want


def test_measurements_older_than_the_envelope_are_found_by_their_own_ts(db, dataset):
    device_id, _ = dataset
    # The readings at 23:59:35..55 travel in the datagram stamped 00:00:00, in the next day's partition.
    start, end = BASE + timedelta(minutes=19, seconds=30), BASE + timedelta(minutes=20)
    series = PostgresSeries(db).query(build_query(device_id, start=start, end=end, metrics=("voltage_dc",)))
    assert [p.ts for p in series[0].points] == [BASE + timedelta(minutes=19, seconds=s) for s in (35, 45, 55)]


def test_postgres_raw_query_over_the_point_limit_is_refused(db, dataset):
    device_id, _ = dataset
    q = build_query(device_id, start=BASE, end=BASE + timedelta(hours=1), limits=Limits(max_points=50))
    with pytest.raises(TooManyPoints):
        PostgresSeries(db).query(q)


def test_unknown_device_or_metric_gives_no_series(db, dataset):
    device_id, _ = dataset
    backend = PostgresSeries(db)
    assert backend.query(build_query("nobody-here", start=BASE, end=BASE + timedelta(hours=1), every="5m")) == []
    q = build_query(device_id, start=BASE, end=BASE + timedelta(hours=1), metrics=("nope",), every="5m", agg="max")
    assert backend.query(q) == []
    assert backend.latest("nobody-here") == []


def test_postgres_latest_is_the_newest_reading_per_metric(db, dataset):
    device_id, flat = dataset
    latest = PostgresSeries(db).latest(device_id)
    want = {}
    for ts, kind, val, unit in flat:
        if kind not in want or ts > want[kind][0]:
            want[kind] = (ts, val, unit)
    assert [(v.metric, v.ts, v.value, v.unit) for v in latest] == [
        (k, *want[k]) for k in sorted(want)]
    only = PostgresSeries(db).latest(device_id, ("temperature",))
    assert [v.metric for v in only] == ["temperature"]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"start": BASE, "end": BASE}, "start"),
    ({"start": BASE + timedelta(hours=1), "end": BASE}, "start"),
    ({"start": BASE, "end": BASE + timedelta(days=32)}, "end"),
    ({"start": BASE, "end": BASE + timedelta(days=31), "every": "1m"}, "every"),
    ({"start": BASE, "end": BASE + timedelta(hours=1), "every": "0m"}, "every"),
    ({"start": BASE, "end": BASE + timedelta(hours=1), "every": "5 minutes"}, "every"),
    ({"start": BASE, "end": BASE + timedelta(hours=1), "every": "5m", "agg": "median"}, "agg"),
    ({"start": BASE, "end": BASE + timedelta(hours=1), "agg": "mean"}, "agg"),
    ({"start": BASE.replace(tzinfo=None), "end": BASE + timedelta(hours=1)}, "start"),
    ({"start": BASE, "end": BASE + timedelta(hours=1), "metrics": ("a\x00",)}, "metric"),
])
def test_build_query_rejects_bad_requests(kwargs, field):
    with pytest.raises(QueryError) as info:
        build_query("d1", **kwargs)
    assert info.value.field == field


def test_build_query_defaults_to_the_last_hour_and_accepts_the_bounds():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    q = build_query("d1", start=None, end=None, now=now)
    assert (q.start, q.end, q.every) == (now - timedelta(hours=1), now, None)
    q = build_query("d1", start=now - timedelta(days=31), end=now, every="5m", agg="last")
    assert q.every == timedelta(minutes=5) and q.agg == "last"  # 8928 buckets: under 10,000


def test_flux_program_escapes_input_and_aligns_windows():
    q = build_query('d"1', start=BASE, end=BASE + timedelta(hours=1), metrics=('x") or (r.a == "', "t${x}"),
                    every="5m", agg="last")
    flux = build_flux("iot-metrics", q)
    assert 'r.device_id == "d\\"1"' in flux
    assert 'r.metric == "x\\") or (r.a == \\""' in flux and 'r.metric == "t\\${x}"' in flux
    assert "range(start: 2026-03-01T23:40:00Z, stop: 2026-03-02T00:40:00Z)" in flux
    assert 'aggregateWindow(every: 300s, fn: last, createEmpty: false, timeSrc: "_start")' in flux
    assert flux_string("a\\b") == '"a\\\\b"'


@pytest.mark.influx
def test_influx_answers_like_postgres(db):
    """Contract: the collector's InfluxDB writer and its PostgreSQL rows hold the same readings; both query backends
    give the same answers (including a unit-less metric, whose unit tag the writer omits)."""
    conf = influx_settings()
    if conf is None:
        pytest.skip("INFLUXDB_URL is not set: no InfluxDB 2.x to run the Flux path against")
    from influxdb_client import InfluxDBClient

    device_id = f"flux-{uuid.uuid4().hex[:8]}"
    rows, _ = make_datagrams(device_id, seed=21)
    for row in rows:
        row["measurements"].append((row["ts"], "pf", 0.95, ""))
    insert_datagrams(db, rows)
    write_influx(conf, rows)
    client = InfluxDBClient(url=conf["url"], token=conf["token"], org=conf["org"])
    try:
        influx, pg = InfluxSeries(client, org=conf["org"], bucket=conf["bucket"]), PostgresSeries(db)
        start, end = BASE + timedelta(minutes=10, seconds=7), BASE + timedelta(minutes=51, seconds=13)
        for agg in ("mean", "min", "max", "last", "count"):
            q = build_query(device_id, start=start, end=end, every="5m", agg=agg)
            got, want = as_dict(influx.query(q)), as_dict(pg.query(q))
            assert got.keys() == want.keys() and ("pf", "") in want
            for key in want:
                assert got[key] == pytest.approx(want[key]), (agg, key)
        raw = build_query(device_id, start=start, end=end, metrics=("temperature", "pf"))
        assert as_dict(influx.query(raw)) == as_dict(pg.query(raw))
    finally:
        client.close()
