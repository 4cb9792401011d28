"""End to end, every component real: device -> Mosquitto -> collector -> RabbitMQ -> stores, rules, notifications."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import pytest

from iothub.contract.topics import device_topic
from tests.support import mqtt as test_mqtt
from tests.support.archive import ArchiveBucket
from tests.support.poll import wait_for
from tests.support.webhook import signature_ok

pytestmark = pytest.mark.slow


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _register(db, device_id: str, device_type: str = "power_meter_dc") -> None:
    with db.transaction() as cur:
        cur.execute("INSERT INTO devices (device_id, name, device_type_id) "
                    "SELECT %s, %s, id FROM device_types WHERE name = %s", (device_id, device_id, device_type))


def _device(port: int, device_id: str) -> mqtt.Client:
    client = test_mqtt.client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{device_id}", clean_session=False)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _publish(client: mqtt.Client, device_id: str, seq: int, voltage: float, ts: str | None = None) -> str:
    ts = ts or _now()
    body = {"v": 2, "device_id": device_id, "ts": ts, "seq": seq, "msg_type": "telemetry",
            "measurements": [{"ts": ts, "type": "voltage_dc", "val": voltage, "unit": "V"},
                             {"ts": ts, "type": "current_dc", "val": 300.0, "unit": "A"}]}
    client.publish(device_topic(device_id, "telemetry"), orjson.dumps(body), qos=1).wait_for_publish(10)
    return ts


def _archived_lines(db, s3_port: int, bucket: str, device_id: str) -> list[dict]:
    return [line for line in ArchiveBucket(s3_port, bucket).visible(db, [device_id]) if line["msg_type"] == "telemetry"]


def test_breaching_reading_flows_to_stores_event_and_signed_webhook(platform, db, mqtt_broker, s3_server,
                                                                     platform_env, webhook, uid):
    device_id = f"e2e-{uid}"
    secret = f"s3cret-{uid}"
    _register(db, device_id)
    with db.transaction() as cur:
        cur.execute("INSERT INTO rules (name, scope, device_id, metric, operator, threshold, severity) "
                    "VALUES (%s, 'device', %s, 'voltage_dc', 'gt', 900, 'critical') RETURNING id",
                    (f"overvoltage-{uid}", device_id))
        rule_id = cur.fetchone()[0]
        cur.execute("INSERT INTO subscriptions (name, channel, target, secret, min_severity, device_id) "
                    "VALUES (%s, 'webhook', %s, %s, 'warning', %s)", (f"hook-{uid}", webhook.url, secret, device_id))
    # The rule engine loads rules at start; tell it about this one as the API would.
    from iothub import topology
    from iothub.rabbit import ConfirmPublisher

    publisher = ConfirmPublisher(platform_env["AMQP_URL"]).start()
    assert publisher.publish_wait(topology.RULES_EXCHANGE, "", orjson.dumps({"rule_id": str(rule_id),
                                                                             "change": "created"}))
    publisher.stop()

    client = _device(mqtt_broker.port, device_id)
    try:
        _publish(client, device_id, 0, 750.0)
        sent = _publish(client, device_id, 1, 950.0)  # breaches voltage_dc > 900
        _publish(client, device_id, 1, 950.0, ts=sent)  # the same message again: dropped by the collector
        _publish(client, device_id, 2, 760.0)
    finally:
        client.loop_stop()
        client.disconnect()

    def series_rows():
        with db.transaction() as cur:
            cur.execute("SELECT seq FROM telemetry WHERE device_id = %s ORDER BY seq", (device_id,))
            return [r[0] for r in cur.fetchall()]

    assert wait_for(lambda: series_rows() == [0, 1, 2] and series_rows(), timeout=30, what="series rows")
    lines = wait_for(lambda: (ls := _archived_lines(db, s3_server.port, platform_env["S3_BUCKET"], device_id))
                     and len(ls) >= 3 and ls, timeout=30, what="archived lines")
    assert sorted(line["seq"] for line in lines) == [0, 1, 2]

    def event():
        with db.transaction(dict_rows=True) as cur:
            cur.execute("SELECT * FROM events WHERE rule_id = %s", (rule_id,))
            return cur.fetchall()

    events = wait_for(event, timeout=30, what="event row")
    assert len(events) == 1 and events[0]["severity"] == "critical" and events[0]["device_id"] == device_id

    signed = wait_for(lambda: webhook.verified(secret), timeout=30, what="signed webhook")
    assert orjson.loads(signed[0]["body"])["event"]["id"] == str(events[0]["id"])
    assert all(signature_ok(r["headers"], r["body"], secret) for r in webhook.requests)

    def attempts():
        with db.transaction(dict_rows=True) as cur:
            cur.execute("SELECT n.id, a.attempt, a.status, a.response_code FROM notification_attempts a "
                        "JOIN notifications n ON n.id = a.notification_id "
                        "JOIN subscriptions s ON s.id = n.subscription_id WHERE n.event_id = %s AND s.name = %s",
                        (events[0]["id"], f"hook-{uid}"))
            return cur.fetchall()

    # The 760 V reading clears the rule, so the event has two changes (opened, resolved): one notification each,
    # each delivered by exactly one successful attempt, and the webhook saw exactly those two.
    recorded = wait_for(lambda: len(rows := attempts()) == 2 and rows, timeout=30, what="two attempt rows")
    assert sorted((a["attempt"], a["status"], a["response_code"]) for a in recorded) == [(1, "sent", 200)] * 2
    assert len({a["id"] for a in recorded}) == 2
    changes = sorted(orjson.loads(r["body"])["change"] for r in webhook.verified(secret))
    assert changes == ["opened", "resolved"]
