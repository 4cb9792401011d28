"""Commands, configs and OTA rollouts reach a device over MQTT (a plain paho client plays the device)."""

from __future__ import annotations

import json
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.device_manager.conftest import assert_error
from tests.support.poll import wait_for

SHA = "ab" * 32


class Device:
    """Subscribes to iot/{device_id}/command for some devices and keeps every payload it receives."""

    def __init__(self, port: int, device_ids: list[str]):
        self.received: dict[str, list[dict]] = {d: [] for d in device_ids}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-device-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_: c.subscribe([(f"iot/{d}/command", 1) for d in device_ids])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "device did not subscribe"

    def _on_message(self, _client, _userdata, msg):
        device_id = msg.topic.split("/")[1]
        with self._lock:
            self.received[device_id].append(json.loads(msg.payload))

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
    assert got[0]["ts"].endswith("Z")
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


def test_command_stays_pending_when_broker_is_unreachable(make_app, auth, device):
    offline = make_app(mqtt_port=1, mqtt_publish_timeout_s=0.3).test_client()
    r = offline.post(f"/api/v1/devices/{device['id']}/commands", headers=auth["operator"], json={"cmd": "reboot"})
    assert r.status_code == 201 and r.get_json()["status"] == "pending" and r.get_json()["sent_at"] is None


@pytest.mark.parametrize("body", [
    {"cmd": "self_destruct"},
    {"cmd": "reboot", "params": "now"},
    {"cmd": "reboot", "expires_in_s": 0},
    {"cmd": "start_ota", "params": {"fw_version": "1.0"}},
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
    desired = {"sampling_interval_s": 0.5, "send_interval_s": 5, "samples_per_datagram": 10}
    r = client.put(path, headers=auth["operator"], json=desired)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["version"] == 1 and body["desired"] == desired and body["command"]["status"] == "sent"
    msg = wait_for(lambda: dev.messages(device["device_id"]), what="update_config")[0]
    assert msg["cmd"] == "update_config" and msg["params"] == {"version": 1, "config": desired}
    same = client.put(path, headers=auth["operator"], json=desired).get_json()
    assert same["version"] == 1 and same["command"] is None  # no change, no new version, no command
    changed = client.put(path, headers=auth["operator"], json={**desired, "send_interval_s": 10}).get_json()
    assert changed["version"] == 2
    wait_for(lambda: len(dev.messages(device["device_id"])) == 2, what="second update_config")
    with app.extensions["device_manager"].db.transaction() as cur:  # what the collector writes from the ack
        cur.execute("UPDATE device_configs SET reported = %s, reported_version = 2, reported_at = now() "
                    "WHERE device_id = %s", (json.dumps({**desired, "send_interval_s": 10}), device["id"]))
    shown = client.get(path, headers=auth["viewer"]).get_json()
    assert shown["in_sync"] is True and shown["reported_version"] == 2 and shown["reported_at"].endswith("Z")
    assert_error(client.put(path, headers=auth["operator"], json={}), 422)
    assert_error(client.put(path, headers=auth["operator"], json={"send_interval_s": -1}), 422)
    assert_error(client.put(path, headers=auth["operator"], json={"colour": "red"}), 422)


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
    assert msg["params"] == {"fw_version": "2.0.0", "url": body["url"], "sha256": SHA, "size": 123456}
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
