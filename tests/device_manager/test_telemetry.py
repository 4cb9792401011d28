"""Telemetry API: the aggregates returned from PostgreSQL equal the data written; bounds, bad input, roles."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest

from device_manager.telemetry.query import parse_every
from tests.device_manager.conftest import assert_error
from tests.device_manager.ops_data import (
    BASE,
    expected,
    influx_settings,
    insert_datagrams,
    make_datagrams,
    write_influx,
)
from tests.support.procs import free_port

START, END = BASE + timedelta(minutes=10, seconds=7), BASE + timedelta(minutes=51, seconds=13)


@pytest.fixture
def written(db, device):
    """The device's 120 datagrams (plus a neighbour's); returns (url prefix, flat readings)."""
    rows, flat = make_datagrams(device["device_id"], seed=11)
    neighbour, _ = make_datagrams(device["device_id"] + "x", seed=12)
    insert_datagrams(db, rows + neighbour)
    return f"/api/v1/devices/{device['id']}/telemetry", flat


def get(client, auth, url, role="viewer", **params):
    query = urlencode(params, doseq=True)
    return client.get(f"{url}?{query}" if query else url, headers=auth[role])


def as_dict(body):
    return {(s["metric"], s["unit"]): {datetime.fromisoformat(p["ts"]): p["value"] for p in s["points"]}
            for s in body["series"]}


@pytest.mark.parametrize("agg", ["mean", "min", "max", "last", "count"])
def test_aggregates_equal_the_data_written(client, auth, written, agg):
    url, flat = written
    resp = get(client, auth, url, start=START.isoformat(), end=END.isoformat(), every="5m", agg=agg)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["every"], body["agg"], body["start"], body["end"]) == (
        "5m", agg, "2026-03-01T23:50:07Z", "2026-03-02T00:31:13Z")
    got, want = as_dict(body), expected(flat, START, END, every=parse_every("5m"), agg=agg)
    assert got.keys() == want.keys() and len(want) == 3
    for key, buckets in want.items():
        assert got[key] == pytest.approx(buckets, rel=1e-12), key


def test_raw_points_for_chosen_metrics(client, auth, written):
    url, flat = written
    start, end = BASE + timedelta(minutes=3), BASE + timedelta(minutes=8)
    body = get(client, auth, url, start=start.isoformat(), end=end.isoformat(),
               metric=["temperature", "current_dc"]).get_json()
    assert (body["every"], body["agg"]) == (None, None)
    assert [s["metric"] for s in body["series"]] == ["current_dc", "temperature"]
    temps = [(datetime.fromisoformat(p["ts"]), p["value"]) for p in body["series"][1]["points"]]
    assert temps == sorted((ts, v) for ts, kind, v, _ in flat if kind == "temperature" and start <= ts < end)


def test_latest_values(client, auth, written):
    url, flat = written
    body = get(client, auth, url + "/latest").get_json()
    newest = {}
    for ts, kind, val, unit in flat:
        if kind not in newest or ts > newest[kind][0]:
            newest[kind] = (ts, val, unit)
    assert [(m["metric"], datetime.fromisoformat(m["ts"]), m["value"], m["unit"]) for m in body["metrics"]] == [
        (k, *newest[k]) for k in sorted(newest)]
    only = get(client, auth, url + "/latest", metric="voltage_dc").get_json()
    assert [m["metric"] for m in only["metrics"]] == ["voltage_dc"]


def test_default_range_is_the_last_hour(client, auth, written):
    url, _ = written
    body = get(client, auth, url).get_json()
    assert body["series"] == []  # the data is from March; nothing in the last hour
    span = datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"])
    assert span == timedelta(hours=1)


@pytest.mark.parametrize(("params", "field"), [
    ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "start"),       # start > end
    ({"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "start"),       # empty range
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),         # longer than 31 days
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z", "every": "1m"}, "every"),  # 44,640 buckets
    ({"every": "5 minutes"}, "every"),
    ({"every": "0s"}, "every"),
    ({"every": "5m", "agg": "median"}, "agg"),
    ({"agg": "max"}, "agg"),                                                             # agg needs every
    ({"start": "2026-03-01T00:00:00"}, "start"),                                         # no offset
    ({"start": "yesterday"}, "start"),
    ({"metric": "m" * 65}, "metric"),
    ({"limit": "5"}, "limit"),                                                           # unknown parameter
])
def test_bad_queries_are_422(client, auth, written, params, field):
    url, _ = written
    err = assert_error(get(client, auth, url, **params), 422, "validation_error")
    assert field in err["details"]["query"], err


def test_raw_queries_over_the_point_limit_are_422(client, auth, db, device):
    rows = [{"device_id": device["device_id"], "ts": BASE + timedelta(seconds=i),
             "measurements": [(BASE + timedelta(seconds=i), f"m{k}", float(i), "V") for k in range(6)]}
            for i in range(1700)]  # 10,200 points
    insert_datagrams(db, rows)
    url = f"/api/v1/devices/{device['id']}/telemetry"
    window = {"start": BASE.isoformat(), "end": (BASE + timedelta(hours=1)).isoformat()}
    err = assert_error(get(client, auth, url, **window), 422, "validation_error")
    assert "every" in err["details"]["query"]
    counted = get(client, auth, url, **window, every="1h", agg="count").get_json()
    assert sum(p["value"] for s in counted["series"] for p in s["points"]) == 10_200


def test_unknown_device_and_roles(client, auth, written):
    url, _ = written
    assert_error(get(client, auth, f"/api/v1/devices/{uuid.uuid4()}/telemetry"), 404, "not_found")
    assert_error(get(client, auth, f"/api/v1/devices/{uuid.uuid4()}/telemetry/latest"), 404, "not_found")
    assert_error(get(client, auth, "/api/v1/devices/dev-1/telemetry"), 404)
    for role in ("admin", "operator", "viewer"):
        assert get(client, auth, url, role=role).status_code == 200
        assert get(client, auth, url + "/latest", role=role).status_code == 200
    assert_error(get(client, auth, url, role=None), 401)
    assert_error(get(client, auth, url + "/latest", role=None), 401)


def test_unreachable_influxdb_is_503(make_app, auth, device):
    app = make_app(series_backend="influxdb", influxdb_url=f"http://127.0.0.1:{free_port()}")
    resp = app.test_client().get(f"/api/v1/devices/{device['id']}/telemetry?every=5m", headers=auth["viewer"])
    assert_error(resp, 503, "unavailable")


@pytest.mark.influx
def test_influx_backend_serves_the_same_responses(make_app, client, auth, db, device):
    """Contract through the API: SERIES_BACKEND=influxdb answers exactly like the PostgreSQL-backed app."""
    conf = influx_settings()
    if conf is None:
        pytest.skip("INFLUXDB_URL is not set: no InfluxDB 2.x to run the Flux path against")
    rows, _ = make_datagrams(device["device_id"], seed=31)
    insert_datagrams(db, rows)
    write_influx(conf, rows)
    influx_app = make_app(series_backend="influxdb", influxdb_url=conf["url"], influxdb_token=conf["token"],
                          influxdb_org=conf["org"], influxdb_bucket=conf["bucket"])
    url = f"/api/v1/devices/{device['id']}/telemetry"
    for params in ({"every": "5m", "agg": agg} for agg in ("mean", "min", "max", "last", "count")):
        query = {"start": START.isoformat(), "end": END.isoformat(), **params}
        want = get(client, auth, url, **query).get_json()
        got = get(influx_app.test_client(), auth, url, **query).get_json()
        assert (got["every"], got["agg"]) == (want["every"], want["agg"])
        got_series, want_series = as_dict(got), as_dict(want)
        assert got_series.keys() == want_series.keys() and want_series
        for key, buckets in want_series.items():
            assert got_series[key] == pytest.approx(buckets), (params, key)

