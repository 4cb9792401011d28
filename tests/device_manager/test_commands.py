"""Commands, configs and OTA rollouts reach a device over MQTT (a plain paho client plays the device)."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.device_manager.conftest import assert_error
from tests.support import mqtt as test_mqtt
from tests.support.poll import wait_for

SHA = "ab" * 32


class Device:
    """Subscribes to iot/{device_id}/command for some devices and keeps every payload it receives."""

    def __init__(self, port: int, device_ids: list[str]):
        self.received: dict[str, list[dict]] = {d: [] for d in device_ids}
        self.qos: list[int] = []  # delivery QoS = min(publish QoS, subscription QoS 2): the publisher's QoS
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = test_mqtt.client(CallbackAPIVersion.VERSION2, client_id=f"test-device-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_: c.subscribe([(f"iot/{d}/command", 2) for d in device_ids])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "device did not subscribe"

    def _on_message(self, _client, _userdata, msg):
        device_id = msg.topic.split("/")[1]
        with self._lock:
            self.received[device_id].append(json.loads(msg.payload))
            self.qos.append(msg.qos)

    def messages(self, device_id: str) -> list[dict]:
        """What arrived for one device so far."""
        with self._lock:
            return list(self.received[device_id])

    def close(self):
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def fake_device(mqtt_broker):
    """Factory: fake_device(device_id, ...) -> a subscribed Device; all closed afterwards."""
    made = []

    def factory(*device_ids):
        made.append(Device(mqtt_broker.port, list(device_ids)))
        return made[-1]

    yield factory
    for d in made:
        d.close()


def _devices(client, auth, device_type, uid, n, prefix="m"):
    body = {"devices": [{"device_id": f"{prefix}{i}-{uid}", "name": f"{prefix}{i}", "device_type": device_type["name"]}
                        for i in range(n)]}
    r = client.post("/api/v1/devices/bulk", headers=auth["operator"], json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["items"]


def test_command_reaches_device_and_is_marked_sent(client, auth, device, fake_device, users):
    dev = fake_device(device["device_id"])
    r = client.post(f"/api/v1/devices/{device['id']}/commands", headers=auth["operator"],
                    json={"cmd": "reboot", "params": {"delay_s": 5}, "expires_in_s": 120})
    assert r.status_code == 201, r.get_json()
    cmd = r.get_json()
    assert cmd["status"] == "sent" and cmd["sent_at"] and cmd["device_id"] == device["device_id"]
    assert cmd["created_by"] == users["operator"]["email"] and cmd["expires_at"] > cmd["created_at"]
    got = wait_for(lambda: dev.messages(device["device_id"]), what="command on MQTT")
    assert len(got) == 1
    assert {k: got[0][k] for k in ("v", "cmd_id", "cmd", "params")} == {
        "v": 2, "cmd_id": cmd["cmd_id"], "cmd": "reboot", "params": {"delay_s": 5}}
    assert got[0]["ts"].endswith("Z") and dev.qos == [2]  # spec REQ-QOS-001
    assert client.get(f"/api/v1/commands/{cmd['cmd_id']}", headers=auth["viewer"]).get_json() == cmd
    listed = client.get(f"/api/v1/devices/{device['id']}/commands?status=sent", headers=auth["viewer"]).get_json()
    assert [c["cmd_id"] for c in listed["items"]] == [cmd["cmd_id"]]


def test_ack_already_applied_is_not_overwritten(app, client, auth, device):
    from device_manager.repositories.commands import CommandRepository

    r = client.post(f"/api/v1/devices/{device['id']}/commands", headers=auth["operator"], json={"cmd": "reboot"})
    cmd_id = r.get_json()["cmd_id"]
    repo = CommandRepository(app.extensions["device_manager"].db)
    with repo.db.transaction() as cur:  # what the collector does when the ack arrives
        cur.execute("UPDATE commands SET status = 'accepted', acked_at = now() WHERE id = %s", (cmd_id,))
    assert repo.mark_sent([cmd_id]) == 0
    assert repo.get(cmd_id)["status"] == "accepted"


def test_command_qos_is_a_setting(make_app, auth, device, fake_device):
    from device_manager.settings import load
    from iothub.settings import Env, SettingsError

    dev_env = {"IOTHUB_ENV": "development", "TLS_MODE": "off", "COMMAND_KEY_KEK": "33" * 32}
    assert (load(Env(dev_env)).command_qos, load(Env({**dev_env, "COMMAND_QOS": "1"})).command_qos) == (2, 1)
    with pytest.raises(SettingsError, match="COMMAND_QOS"):
        load(Env({**dev_env, "COMMAND_QOS": "0"}))
    qos1 = make_app(command_qos=1).test_client()
    dev = fake_device(device["device_id"])
    r = qos1.post(f"/api/v1/devices/{device['id']}/commands", headers=auth["operator"], json={"cmd": "reboot"})
    assert r.get_json()["status"] == "sent"
    wait_for(lambda: dev.messages(device["device_id"]), what="command at QoS 1")
    assert dev.qos == [1]


def test_start_ota_command_is_sent_in_spec_names_whichever_spelling_came_in(client, auth, device, fake_device):
    dev = fake_device(device["device_id"])
    spec = {"fw_version": "2.1.0", "fw_url": "http://fw.local/2.1.0.bin", "fw_sha256": SHA, "fw_size_bytes": 512}
    legacy = {"fw_version": "2.1.0", "url": spec["fw_url"], "sha256": SHA, "size": 512}
    path = f"/api/v1/devices/{device['id']}/commands"
    for params in (spec, legacy):
        r = client.post(path, headers=auth["operator"], json={"cmd": "start_ota", "params": params})
        assert r.status_code == 201, r.get_json()
        assert r.get_json()["params"] == spec  # stored as sent
    got = wait_for(lambda: len(m := dev.messages(device["device_id"])) == 2 and m, what="two start_ota")
    assert [m["params"] for m in got] == [spec, spec]
    r = client.post("/api/v1/commands/bulk", headers=auth["operator"],
                    json={"cmd": "start_ota", "params": legacy, "device_ids": [str(device["id"])]})
    assert r.status_code == 202 and r.get_json()["sent"] == 1
    wait_for(lambda: len(dev.messages(device["device_id"])) == 3, what="bulk start_ota")
    assert dev.messages(device["device_id"])[2]["params"] == spec
    err = assert_error(client.post(path, headers=auth["operator"],
                                   json={"cmd": "start_ota", "params": {**spec, "url": spec["fw_url"]}}), 422)
    assert err["details"]["json"]["params"]["_schema"] == ["Give url or fw_url, not both."]


def test_command_stays_pending_when_broker_is_unreachable(make_app, auth, device):
    offline = make_app(mqtt_port=1, mqtt_publish_timeout_s=0.3).test_client()
    r = offline.post(f"/api/v1/devices/{device['id']}/commands", headers=auth["operator"], json={"cmd": "reboot"})
    assert r.status_code == 201 and r.get_json()["status"] == "pending" and r.get_json()["sent_at"] is None


@pytest.mark.parametrize("body", [
    {"cmd": "self_destruct"},
    {"cmd": "reboot", "params": "now"},
    {"cmd": "reboot", "expires_in_s": 0},
    {"cmd": "start_ota", "params": {"fw_version": "1.0"}},
    {"cmd": "start_ota", "params": {"fw_version": "1.0", "fw_url": "http://x", "fw_sha256": "XYZ", "fw_size_bytes": 1}},
    {"cmd": "reboot", "priority": 1},
])
def test_bad_commands_are_422(client, auth, device, body):
    r = client.post(f"/api/v1/devices/{device['id']}/commands", headers=auth["operator"], json=body)
    assert_error(r, 422, "validation_error")


def test_bulk_command_by_type_and_by_ids(client, auth, device_type, uid, fake_device):
    items = _devices(client, auth, device_type, uid, 4)
    ids = [d["device_id"] for d in items]
    dev = fake_device(*ids)
    client.patch(f"/api/v1/devices/{items[3]['id']}", headers=auth["operator"], json={"status": "decommissioned"})
    r = client.post("/api/v1/commands/bulk", headers=auth["operator"],
                    json={"cmd": "request_status", "device_type": device_type["name"]})
    assert r.status_code == 202, r.get_json()
    result = r.get_json()
    assert result["count"] == 3 and result["sent"] == 3  # decommissioned devices are left out
    wait_for(lambda: all(len(dev.messages(d)) == 1 for d in ids[:3]), what="bulk command on 3 devices")
    assert dev.messages(ids[3]) == []
    listed = client.get(f"/api/v1/commands?bulk_id={result['bulk_id']}&sort=cmd", headers=auth["viewer"]).get_json()
    assert listed["total"] == 3 and {c["status"] for c in listed["items"]} == {"sent"}
    r = client.post("/api/v1/commands/bulk", headers=auth["operator"],
                    json={"cmd": "reboot", "device_ids": [items[0]["id"], items[1]["id"]]})
    assert r.get_json()["count"] == 2
    wait_for(lambda: len(dev.messages(ids[0])) == 2 and len(dev.messages(ids[1])) == 2, what="second bulk")
    assert_error(client.post("/api/v1/commands/bulk", headers=auth["operator"], json={"cmd": "reboot"}), 422)


def test_config_versioning_sends_update_config(client, auth, device, fake_device, app):
    dev = fake_device(device["device_id"])
    path = f"/api/v1/devices/{device['id']}/config"
    empty = client.get(path, headers=auth["viewer"]).get_json()
    assert (empty["version"], empty["desired"], empty["reported"], empty["in_sync"]) == (0, {}, None, False)
    desired = {"sampling_cadence_ms": 500, "send_interval_s": 5, "samples_per_datagram": 10}
    r = client.put(path, headers=auth["operator"], json=desired)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["version"] == 1 and body["desired"] == desired and body["command"]["status"] == "sent"
    msg = wait_for(lambda: dev.messages(device["device_id"]), what="update_config")[0]
    assert msg["cmd"] == "update_config" and msg["params"] == desired  # flat spec params, as a spec device reads
    same = client.put(path, headers=auth["operator"], json=desired).get_json()
    assert same["version"] == 1 and same["command"] is None  # no change, no new version, no command
    changed = client.put(path, headers=auth["operator"], json={**desired, "send_interval_s": 10}).get_json()
    assert changed["version"] == 2
    wait_for(lambda: len(dev.messages(device["device_id"])) == 2, what="second update_config")
    with app.extensions["device_manager"].db.transaction() as cur:  # the version travels beside the params
        cur.execute("SELECT config_version FROM commands WHERE id = ANY(%s::uuid[]) ORDER BY config_version",
                    ([body["command"]["cmd_id"], changed["command"]["cmd_id"]],))
        assert [r[0] for r in cur.fetchall()] == [1, 2]
        # what the collector writes from the ack
        cur.execute("UPDATE device_configs SET reported = %s, reported_version = 2, reported_at = now() "
                    "WHERE device_id = %s", (json.dumps({**desired, "send_interval_s": 10}), device["id"]))
    shown = client.get(path, headers=auth["viewer"]).get_json()
    assert shown["in_sync"] is True and shown["reported_version"] == 2 and shown["reported_at"].endswith("Z")
    for bad in ({}, {"send_interval_s": -1}, {"colour": "red"}, {"sampling_interval_s": 0.5}):
        assert_error(client.put(path, headers=auth["operator"], json=bad), 422)


BROKERS = [{"host": "mqtt-a.example.com", "port": 8883}, {"host": "10.0.0.7", "port": 1883}, {"host": "::1", "port": 1}]


@pytest.mark.parametrize(("body", "valid"), [
    ({"sampling_cadence_ms": 100, "send_interval_s": 1, "hello_interval_s": 5, "tls_enabled": True}, True),
    ({"sampling_cadence_ms": 60000, "send_interval_s": 3600, "hello_interval_s": 3600, "samples_per_datagram": 200},
     True),
    ({"brokers": BROKERS, "samples_per_datagram": 0}, True),
    ({"brokers": [{"host": "b", "port": 65535}] * 5}, True),
    ({"sampling_cadence_ms": 99}, False), ({"sampling_cadence_ms": 60001}, False),
    ({"sampling_cadence_ms": 150.5}, False),
    ({"send_interval_s": 0}, False), ({"send_interval_s": 3601}, False), ({"send_interval_s": 2.5}, False),
    ({"hello_interval_s": 4}, False), ({"hello_interval_s": 3601}, False), ({"hello_interval_s": True}, False),
    ({"samples_per_datagram": 201}, False), ({"tls_enabled": "maybe"}, False),
    ({"brokers": []}, False), ({"brokers": [{"host": "b", "port": 1}] * 6}, False),
    ({"brokers": [{"host": "", "port": 1}]}, False), ({"brokers": [{"host": "b", "port": 0}]}, False),
    ({"brokers": [{"host": "b", "port": 65536}]}, False), ({"brokers": [{"host": "b"}]}, False),
    ({"brokers": [{"host": "a" * 254, "port": 1}]}, False), ({"brokers": [{"host": "bad host", "port": 1}]}, False),
    ({"brokers": [{"host": "256.1.1.1", "port": 1}]}, False), ({"brokers": [{"host": "b", "port": 1, "x": 1}]}, False),
])
def test_desired_config_keys_and_ranges_are_the_spec_s(client, auth, device, body, valid):
    r = client.put(f"/api/v1/devices/{device['id']}/config", headers=auth["operator"], json=body)
    if valid:
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["command"]["params"] == body
    else:
        assert_error(r, 422, "validation_error")


def test_config_history_lists_what_the_device_accepted(app, client, auth, device):
    from collector.writers.state import Ack, StateBatch
    from collector.writers.state_postgres import PostgresStateStore

    path = f"/api/v1/devices/{device['id']}/config"
    sent = []
    for desired in ({"send_interval_s": 5}, {"send_interval_s": 5, "brokers": BROKERS[:2]},
                    {"send_interval_s": 30}):
        sent.append(client.put(path, headers=auth["operator"], json=desired).get_json()["command"])
    assert all(c["status"] == "sent" for c in sent)
    assert client.get(f"{path}/history", headers=auth["viewer"]).get_json()["total"] == 0
    t0 = datetime.now(UTC).replace(microsecond=0)
    store = PostgresStateStore(app.extensions["device_manager"].db)  # the collector's ack writer
    store.apply(StateBatch(acks=[Ack(sent[0]["cmd_id"], device["device_id"], "accepted", None, t0),
                                 Ack(sent[2]["cmd_id"], device["device_id"], "rejected", "no", t0)]))
    store.apply(StateBatch(acks=[Ack(sent[1]["cmd_id"], device["device_id"], "accepted", None,
                                     t0 + timedelta(seconds=1))]))
    config = client.get(path, headers=auth["viewer"]).get_json()
    assert config["reported"] == {"send_interval_s": 5, "brokers": BROKERS[:2]} and config["reported_version"] == 2
    r = client.get(f"{path}/history?page_size=1", headers=auth["viewer"])
    assert r.status_code == 200, r.get_json()
    page = r.get_json()
    assert page["total"] == 2 and page["links"]["next"] and page["links"]["prev"] is None
    newest = page["items"][0]
    assert set(newest) == {"id", "cmd_id", "applied", "config", "config_version", "applied_at", "recorded_at"}
    assert (newest["cmd_id"], newest["config_version"], newest["applied_at"]) == (
        sent[1]["cmd_id"], 2, (t0 + timedelta(seconds=1)).isoformat().replace("+00:00", "Z"))
    assert newest["applied"] == {"send_interval_s": 5, "brokers": BROKERS[:2]} == newest["config"]
    oldest = client.get(page["links"]["next"], headers=auth["viewer"]).get_json()["items"][0]
    assert (oldest["cmd_id"], oldest["applied"], oldest["config_version"]) == (
        sent[0]["cmd_id"], {"send_interval_s": 5}, 1)
    ascending = client.get(f"{path}/history?sort=applied_at", headers=auth["viewer"]).get_json()["items"]
    assert [h["cmd_id"] for h in ascending] == [sent[0]["cmd_id"], sent[1]["cmd_id"]]
    assert_error(client.get(f"{path}/history?sort=config", headers=auth["viewer"]), 422)
    assert_error(client.get(f"/api/v1/devices/{uuid.uuid4()}/config/history", headers=auth["viewer"]), 404)


def test_ota_rollout(client, auth, device_type, uid, fake_device, app):
    items = _devices(client, auth, device_type, uid, 3, prefix="ota")
    ids = [d["device_id"] for d in items]
    dev = fake_device(*ids)
    body = {"fw_version": "2.0.0", "url": "http://fw.local/fw-2.0.0.bin", "sha256": SHA, "size_bytes": 123456,
            "device_type": device_type["name"]}
    r = client.post("/api/v1/ota/rollouts", headers=auth["operator"], json=body)
    assert r.status_code == 201, r.get_json()
    rollout = r.get_json()
    assert rollout["sent"] == 3 and rollout["summary"]["total"] == 3 and rollout["summary"]["states"]["pending"] == 3
    wait_for(lambda: all(dev.messages(d) for d in ids), what="start_ota on every device")
    msg = dev.messages(ids[0])[0]
    assert msg["cmd"] == "start_ota"
    assert msg["params"] == {"fw_version": "2.0.0", "fw_url": body["url"], "fw_sha256": SHA, "fw_size_bytes": 123456}
    with app.extensions["device_manager"].db.transaction() as cur:  # what the collector writes from ota/status
        cur.execute("UPDATE ota_device_states SET state = 'success', progress_pct = 100 WHERE cmd_id = %s",
                    (msg["cmd_id"],))
        cur.execute("UPDATE ota_device_states o SET state = 'downloading', progress_pct = 50 FROM devices d "
                    "WHERE d.id = o.device_id AND d.device_id = %s", (ids[1],))
    shown = client.get(f"/api/v1/ota/rollouts/{rollout['id']}", headers=auth["viewer"]).get_json()
    assert shown["summary"]["states"]["success"] == 1 and shown["summary"]["states"]["downloading"] == 1
    assert shown["summary"]["progress_pct"] == 50.0 and shown["summary"]["complete"] is False
    states = client.get(f"/api/v1/ota/rollouts/{rollout['id']}/devices?state=success", headers=auth["viewer"])
    assert [s["device_id"] for s in states.get_json()["items"]] == [ids[0]]
    listed = client.get("/api/v1/ota/rollouts?fw_version=2.0.0&page_size=100", headers=auth["viewer"]).get_json()
    assert rollout["id"] in [x["id"] for x in listed["items"]]
    cmds = client.get(f"/api/v1/commands?rollout_id={rollout['id']}", headers=auth["viewer"]).get_json()
    assert cmds["total"] == 3


def test_ota_rollout_bad_input(client, auth, uid):
    base = {"fw_version": f"bad-{uid}", "url": "http://fw/x.bin", "sha256": SHA, "size_bytes": 1}
    for body in ({**base, "sha256": "XYZ"}, {**base, "size_bytes": 0}, base, {**base, "url": "ftp://x"},
                 {**base, "device_type": f"nothing-{uid}"}):
        assert_error(client.post("/api/v1/ota/rollouts", headers=auth["operator"], json=body), 422)
    before = client.get(f"/api/v1/ota/rollouts?fw_version=bad-{uid}", headers=auth["viewer"]).get_json()["total"]
    assert before == 0  # the rejected rollout with no matching device left no row behind


@pytest.mark.fault
def test_publisher_recovers_after_broker_outage(make_app, auth, device, tmp_path):
    from tests.support import procs

    broker = procs.mosquitto(tmp_path).start()  # a private broker: stopping the shared one would disturb others
    try:
        client = make_app(mqtt_port=broker.port, mqtt_publish_timeout_s=1.0).test_client()
        path = f"/api/v1/devices/{device['id']}/commands"
        wait_for(lambda: client.get("/readyz").get_json()["checks"]["mqtt"], what="publisher connected")
        assert client.post(path, headers=auth["operator"], json={"cmd": "reboot"}).get_json()["status"] == "sent"
        broker.stop()
        down = client.post(path, headers=auth["operator"], json={"cmd": "reboot"})
        assert down.status_code == 201 and down.get_json()["status"] == "pending"
        assert client.get("/readyz").status_code == 503
        broker.start()
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="publisher reconnected")
        dev = Device(broker.port, [device["device_id"]])
        try:
            again = client.post(path, headers=auth["operator"], json={"cmd": "request_status"}).get_json()
            assert again["status"] == "sent"
            wait_for(lambda: any(m["cmd_id"] == again["cmd_id"] for m in dev.messages(device["device_id"])),
                     what="command after reconnect")
        finally:
            dev.close()
    finally:
        broker.stop()
