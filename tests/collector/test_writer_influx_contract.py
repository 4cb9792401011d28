"""Contract of the InfluxDB series store against a real InfluxDB 2.x (set INFLUXDB_URL to run)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from collector.writers.series import to_record
from iothub.contract.ingest import IngestMessage
from tests.support.poll import wait_for

pytestmark = [
    pytest.mark.influx,
    pytest.mark.skipif(not os.environ.get("INFLUXDB_URL"),
                       reason="needs a real InfluxDB 2.x: set INFLUXDB_URL, INFLUXDB_TOKEN, INFLUXDB_ORG, "
                              "INFLUXDB_BUCKET"),
]


@pytest.fixture
def influx():
    """Store and query API on the InfluxDB named by the environment."""
    from influxdb_client import InfluxDBClient

    from collector.writers.series_influx import InfluxSeriesStore

    url, token = os.environ["INFLUXDB_URL"], os.environ.get("INFLUXDB_TOKEN", "")
    org, bucket = os.environ.get("INFLUXDB_ORG", "iot-org"), os.environ.get("INFLUXDB_BUCKET", "iot-metrics")
    store = InfluxSeriesStore(url, token, org, bucket)
    client = InfluxDBClient(url=url, token=token, org=org)
    yield store, client.query_api(), bucket
    client.close()
    store.close()


def test_redelivered_points_are_stored_once_with_their_tags(influx, uid):
    store, query, bucket = influx
    device = f"ctr-{uid}"
    t1 = datetime.now(UTC).replace(microsecond=123000) - timedelta(minutes=1)
    body = {"measurements": [{"ts": t1.isoformat(), "type": "voltage_dc", "val": 750.25, "unit": "V"},
                             {"ts": (t1 + timedelta(seconds=1)).isoformat(), "type": "pf", "val": 0.9, "unit": ""}]}
    msg = IngestMessage(str(uuid.uuid4()), device, "power_meter_dc", "telemetry", t1.isoformat(), 1, 1,
                        t1.isoformat(), "mqtt", body)
    record = to_record(msg, t1)
    assert store.write([record]) == 2
    assert store.write([record]) == 2  # redelivery: same series and timestamps overwrite

    flux = f'''from(bucket: "{bucket}") |> range(start: -1h)
      |> filter(fn: (r) => r._measurement == "iot_telemetry" and r.device_id == "{device}")'''

    def rows():
        return [(r.values.get("metric"), r.values.get("unit"), r.values.get("device_type"), r.get_field(),
                 r.get_value(), r.get_time()) for table in query.query(flux) for r in table.records]

    found = sorted(wait_for(lambda: len(rows()) >= 2 and rows(), timeout=20, what="points readable"), key=str)
    assert found == sorted([("voltage_dc", "V", "power_meter_dc", "value", 750.25, t1),
                            ("pf", None, "power_meter_dc", "value", 0.9, t1 + timedelta(seconds=1))], key=str)
