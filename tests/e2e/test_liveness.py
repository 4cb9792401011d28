"""No false "Device offline" for a meter that keeps sending, whatever it sends (spec REQ-ONLINE-001), over the real
stack: duplicates and dead-lettered messages are signs of life; real silence is offline after 2 x max(send, hello)
of the meter's applied configuration."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest

from iothub.contract.topics import device_topic
from tests.e2e.test_pipeline import _device, _register
from tests.support.poll import wait_for
from tests.support.queues import purge_all
from tests.support.services import running_platform

pytestmark = pytest.mark.slow
APPLIED = {"send_interval_s": 1, "hello_interval_s": 3}  # offline after 2 x 3 s of silence


def _offline_events(db, device_id) -> list[tuple[str, str]]:
    with db.transaction() as cur:
        cur.execute("SELECT status, trigger_values ->> 'reason' FROM events "
                    "WHERE device_id = %s AND rule_kind = 'offline'", (device_id,))
        return cur.fetchall()


def test_a_meter_sending_only_duplicates_and_rejects_stays_online_until_it_falls_silent(
        db, platform_env, amqp_url, mqtt_broker, tmp_path, uid):
    device_id = f"live-{uid}"
    _register(db, device_id)
    with db.transaction() as cur:  # what its accepted update_config left as the applied configuration
        cur.execute("INSERT INTO device_configs (device_id, reported) SELECT id, %s FROM devices WHERE device_id = %s",
                    (orjson.dumps(APPLIED).decode(), device_id))
    purge_all(amqp_url)
    env = {**platform_env, "DEVICE_CONFIG_REFRESH_S": "1", "SWEEP_INTERVAL_S": "0.5", "PERSIST_SEEN_S": "1"}
    with running_platform(env, tmp_path):
        client = _device(mqtt_broker.port, device_id)
        try:
            ts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            first = orjson.dumps({"v": 2, "device_id": device_id, "ts": ts, "seq": 0, "msg_type": "telemetry",
                                  "measurements": [{"ts": ts, "type": "voltage_dc", "val": 750.0, "unit": "V"}]})
            topic = device_topic(device_id, "telemetry")
            client.publish(topic, first, qos=1).wait_for_publish(10)
            until = time.monotonic() + 12  # four offline limits' worth of nothing but repeats and rejects
            beat = 0
            while time.monotonic() < until:
                payload = first if beat % 2 else first.replace(b'"seq":0', b'"seq":"zero"')
                client.publish(topic, payload, qos=1).wait_for_publish(10)
                beat += 1
                time.sleep(1.0)  # the meter's send interval: pacing, not synchronisation
            assert _offline_events(db, device_id) == []
            with db.transaction() as cur:
                cur.execute("SELECT count(*) FROM telemetry WHERE device_id = %s", (device_id,))
                assert cur.fetchone()[0] == 1  # the repeats were dropped, the rejects parked
        finally:
            client.loop_stop()
            client.disconnect()
        events = wait_for(lambda: _offline_events(db, device_id), timeout=30, what="offline after real silence")
        assert events == [("open", "silent")]
