"""The firmware spec's own example messages, published at QoS 2 through the real broker, land in every store."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import pytest

from iothub.contract.topics import device_topic
from tests.e2e.test_pipeline import _register
from tests.spec import examples
from tests.support import mqtt as test_mqtt
from tests.support.poll import wait_for

pytestmark = pytest.mark.slow


def test_spec_examples_are_stored_with_device_state(platform, db, mqtt_broker):
    # Dated today (the series store keeps 90 days): otherwise byte for byte as the spec publishes them.
    today = datetime.now(UTC).date().isoformat().encode()
    _register(db, "dc-meter-007", "power_meter_dc")
    _register(db, "ac-meter-101", "power_meter_ac")
    client = test_mqtt.client(mqtt.CallbackAPIVersion.VERSION2, client_id="spec-examples", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mqtt_broker.port)
    client.loop_start()
    try:
        for suffix, raw in examples.DEVICE_MESSAGES.values():
            if raw is examples.OFFLINE:
                continue  # the Last Will fires when a meter disappears; this one stays
            qos = 1 if suffix in ("status", "ota/status") else 2  # REQ-QOS-001
            retain = suffix == "status"
            info = client.publish(device_topic(orjson.loads(raw)["device_id"], suffix),
                                  raw.replace(b"2026-02-12", today), qos=qos, retain=retain)
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()

    def stored():
        with db.transaction() as cur:
            cur.execute("SELECT device_id, seq, count(*) FILTER (WHERE m->>'type' NOT LIKE 'power\\_%%'), "
                        "count(*) FILTER (WHERE m->>'type' LIKE 'power\\_%%') FROM telemetry, "
                        "jsonb_array_elements(measurements) m "
                        "WHERE device_id IN ('dc-meter-007', 'ac-meter-101') GROUP BY 1, 2 ORDER BY device_id")
            return cur.fetchall()

    # Measured as sent, and derived power beside it (docs/metering.md): AC P, S, Q per instant, DC P per instant.
    assert wait_for(lambda: len(rows := stored()) == 2 and rows, timeout=30, what="both datagrams") == \
        [("ac-meter-101", 87, 8, 6), ("dc-meter-007", 142, 4, 2)]

    def device_state():
        with db.transaction() as cur:
            cur.execute("SELECT connection_status, fw_version, broker_connections FROM devices "
                        "WHERE device_id = 'dc-meter-007'")
            return cur.fetchone()

    assert wait_for(lambda: (s := device_state())[1] and s, timeout=30, what="hello applied") == \
        ("online", "2.1.0", 2)
