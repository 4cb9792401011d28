"""`simulator provision` issues each meter its own broker password, and `run --connection-mode per-device` logs in
as that meter: no shared account, the broker's per-device ACLs apply to the simulated fleet too."""

from __future__ import annotations

import queue

import orjson

from simulator.mqtt import MqttSink
from simulator.provision import provision
from tests.simulator.conftest import make_settings
from tests.support import mqtt as test_mqtt
from tests.support.mqtt_probe import Probe
from tests.support.poll import wait_for


def test_provision_issues_passwords_once_and_the_fleet_logs_in_as_its_meters(db, pg_dsn, mqtt_broker, subscriber,
                                                                             tmp_path, uid):
    creds = tmp_path / "credentials.json"
    flags = ("--devices", "3", "--id-prefix", f"c{uid}", "--database-url", pg_dsn, "--mqtt-port",
             str(mqtt_broker.port), "--credentials-file", str(creds))
    admin = {"MQTT_ADMIN_PASSWORD": test_mqtt.ADMIN[1], "MQTT_USERNAME": "", "MQTT_PASSWORD": ""}
    s = make_settings("provision", *flags, **admin)
    provision(s)
    issued = orjson.loads(creds.read_bytes())
    assert sorted(issued) == [s.device_id(i) for i in range(3)] and len(set(issued.values())) == 3
    assert creds.stat().st_mode & 0o077 == 0  # readable by its owner only
    provision(s)
    assert orjson.loads(creds.read_bytes()) == issued  # idempotent: nobody's password changes
    with db.transaction() as cur:
        cur.execute("SELECT device_id, fingerprint FROM device_credentials WHERE device_id LIKE %s ORDER BY 1",
                    (f"c{uid}-%",))
        rows = cur.fetchall()
    assert [r[0] for r in rows] == sorted(issued) and all(r[1].startswith("sha256:") for r in rows)
    assert not any(pw in str(rows) for pw in issued.values())

    run = make_settings("--connection-mode", "per-device", *flags[:-4], "--mqtt-port", str(mqtt_broker.port),
                        "--credentials-file", str(creds), **admin)
    assert run.mqtt_auth.username is None  # no shared account: each connection is its device
    sink = MqttSink(run, list(issued), queue.Queue())
    try:
        sink.start(run, timeout=10)
        first = run.device_id(0)
        assert sink.publish(0, f"iot/{first}/telemetry", b'{"x": 1}', qos=1)
        wait_for(lambda: subscriber.received(f"{first}/telemetry"), what="a meter's own telemetry")
    finally:
        sink.close()
    # The password of one meter is not a key to another's topics.
    other = Probe(mqtt_broker.port, test_mqtt.auth((first, issued[first]))).connect()
    try:
        assert other.publish(f"iot/{run.device_id(1)}/telemetry").value == 0x87
    finally:
        other.close()
