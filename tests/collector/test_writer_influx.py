"""Series writer on the InfluxDB line protocol, received by a real VictoriaMetrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import requests

from iothub import topology
from tests.support.poll import wait_for

SERIES = topology.SERIES_QUEUE.name


def _export(victoria, device_id):
    """Every sample VictoriaMetrics holds for a device, as {(metric name, labels...): [(ms, value)]}."""
    response = requests.get(f"{victoria}/api/v1/export", params={"match[]": f'{{device_id="{device_id}"}}'},
                            timeout=10)
    response.raise_for_status()
    series = {}
    for line in response.text.splitlines():
        item = orjson.loads(line)
        labels = tuple(sorted(item["metric"].items()))
        series.setdefault(labels, []).extend(zip(item["timestamps"], item["values"], strict=True))
    return series


def test_points_land_with_tags_and_device_timestamps(writer_kit, victoria):
    kit = writer_kit
    kit.purge(SERIES)
    device = f"flx-{kit.uid}"
    t1 = datetime.now(UTC).replace(microsecond=250000) - timedelta(minutes=2)
    t2 = t1 + timedelta(seconds=10)
    first = kit.message(device, "telemetry", {"measurements": [
        {"ts": t1.isoformat(), "type": "voltage_ac", "val": 230.5, "unit": "V"},
        {"ts": t2.isoformat(), "type": "pf", "val": 0.93, "unit": ""},
    ]}, ts=t1, seq=1, device_type="power_meter_ac")
    kit.send(first, first)
    kit.start("series", kit.settings(WRITERS="series", SERIES_BACKENDS="influxdb", INFLUXDB_URL=victoria,
                                     INFLUXDB_TOKEN="any", INFLUXDB_ORG="org", INFLUXDB_BUCKET="bucket"))
    flush = lambda: requests.get(f"{victoria}/internal/force_flush", timeout=10)  # noqa: E731
    series = wait_for(lambda: flush() and len(s := _export(victoria, device)) == 2 and s, timeout=30,
                      what="two series in VictoriaMetrics")

    base = {"__name__": "iot_telemetry_value", "device_id": device, "device_type": "power_meter_ac"}
    volt = tuple(sorted({**base, "metric": "voltage_ac", "unit": "V"}.items()))
    pf = tuple(sorted({**base, "metric": "pf"}.items()))
    assert set(series) == {volt, pf}, series
    # The message was published twice: VictoriaMetrics keeps both samples, InfluxDB overwrites (same series + ts);
    # either way there is one distinct timestamp per reading (see test_writer_influx_contract for InfluxDB).
    assert {ts for ts, _ in series[volt]} == {int(t1.timestamp() * 1000)}
    assert {v for _, v in series[volt]} == {230.5}
    assert {ts for ts, _ in series[pf]} == {int(t2.timestamp() * 1000)}
    assert {v for _, v in series[pf]} == {0.93}
    assert kit.ready_count(SERIES) == 0
