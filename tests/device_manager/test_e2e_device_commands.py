"""End to end: API command and OTA rollout -> Mosquitto -> simulator device -> ack -> collector -> API state.

The simulated device holds its command key from provisioning and verifies every command; OTA images are uploaded
through the API into S3 and downloaded by the device from the pre-signed URL it is sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
import uuid

import pytest
from minio import Minio
from paho.mqtt.enums import CallbackAPIVersion

from tests.device_manager.conftest import COMMAND_KEY_KEK
from tests.support import mqtt as test_mqtt
from tests.support.poll import wait_for
from tests.support.queues import purge_all
from tests.support.services import service

pytestmark = pytest.mark.slow


@pytest.fixture(params=["iothub", "spec"])
def fleet(request, pg_dsn, amqp_url, mqtt_broker, tmp_path, uid):
    """A collector (device-state writer only) and one simulated power meter on its own connection, speaking our
    protocol or exactly as the firmware spec says (QoS 2, no hellos at these intervals)."""
    purge_all(amqp_url)
    prefix = f"cmd{uid}"
    env = {"IOTHUB_ENV": "development", "DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url, "MQTT_HOST": "127.0.0.1",
           "MQTT_PORT": str(mqtt_broker.port), **test_mqtt.env(),
           "MQTT_CLIENT_ID": f"collector-{uid}", "HTTP_INGEST_ENABLED": "false",
           "WRITERS": "state", "WRITER_BATCH_WAIT": "0.05",
           "SIM_COMMAND_KEY_SEED": f"e2e-seed-{uid}", "COMMAND_KEY_KEK": COMMAND_KEY_KEK}
    sim_args = ("--profile", request.param, "--devices", "1", "--id-prefix", prefix, "--type-mix", "power_meter_dc:1",
                "--connection-mode", "per-device", "--send-interval", "5", "--ota-step", "0.2", "--metrics-port", "0")
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "simulator", "provision", *sim_args, "--database-url", pg_dsn], check=True,
                   capture_output=True, timeout=60, env={**os.environ, **env})
    procs = []
    try:
        procs.append(service("collector", env, tmp_path).start(timeout=60))
        sim = service("simulator", env, tmp_path, args=("run", *sim_args))
        procs.append(sim.start(wait_healthy=False))
        yield f"{prefix}-000000"
    finally:
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.stop()


def _device_uuid(client, auth, device_id: str) -> str:
    body = client.get(f"/api/v1/devices?q={device_id}", headers=auth["operator"]).get_json()
    return next(d["id"] for d in body["items"] if d["device_id"] == device_id)


def _online_device(client, auth, device_id: str) -> str:
    """The device's UUID once the collector has seen it online (it has subscribed to its command topic by then)."""
    device = _device_uuid(client, auth, device_id)
    wait_for(lambda: client.get(f"/api/v1/devices/{device}", headers=auth["viewer"]).get_json()
             ["connection_status"] == "online", timeout=30, what="device online")
    return device


def test_command_reaches_device_and_ack_comes_back_accepted(client, auth, fleet):
    device = _online_device(client, auth, fleet)
    created = client.post(f"/api/v1/devices/{device}/commands", headers=auth["operator"],
                          json={"cmd": "request_status", "params": {}})
    assert created.status_code == 201, created.get_json()
    cmd_id = created.get_json()["cmd_id"]

    def status():
        return client.get(f"/api/v1/commands/{cmd_id}", headers=auth["viewer"]).get_json()["status"]

    assert wait_for(lambda: status() == "accepted", timeout=30, what="command accepted")


def test_update_config_reaches_device_flat_and_its_ack_is_audited(client, auth, fleet):
    device = _online_device(client, auth, fleet)
    desired = {"send_interval_s": 8, "hello_interval_s": 30}
    put = client.put(f"/api/v1/devices/{device}/config", headers=auth["operator"], json=desired)
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["command"]["params"] == desired

    def config():
        return client.get(f"/api/v1/devices/{device}/config", headers=auth["viewer"]).get_json()

    shown = wait_for(lambda: (c := config())["in_sync"] and c, timeout=30, what="device reported the config")
    assert shown["reported"] == desired and shown["reported_version"] == 1
    history = client.get(f"/api/v1/devices/{device}/config/history", headers=auth["viewer"]).get_json()["items"]
    assert [(h["cmd_id"], h["applied"], h["config"], h["config_version"]) for h in history] == [
        (put.get_json()["command"]["cmd_id"], desired, desired, 1)]


IMAGE = hashlib.sha256(b"pm-2.0.0").digest() * 2048  # 64 KiB


@pytest.fixture
def fw_client(make_app, s3_server, uid):
    """An API whose firmware store is the suite's S3 (which the simulator downloads from)."""
    return make_app(s3_endpoint=f"127.0.0.1:{s3_server.port}", s3_access_key="test", s3_secret_key="testtest",
                    firmware_bucket=f"e2e-fw-{uid}").test_client()


def _upload(client, auth) -> dict:
    r = client.post("/api/v1/firmware", headers=auth["operator"], content_type="multipart/form-data",
                    data={"fw_version": "2.0.0", "file": (io.BytesIO(IMAGE), "pm-2.0.0.bin")})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _rollout_states(client, auth, device: str, firmware_id: str) -> list[dict]:
    created = client.post("/api/v1/ota/rollouts", headers=auth["operator"],
                          json={"firmware_id": firmware_id, "device_ids": [device]})
    assert created.status_code == 201, created.get_json()
    rollout = created.get_json()["id"]

    def final():
        s = client.get(f"/api/v1/ota/rollouts/{rollout}/devices", headers=auth["viewer"]).get_json()["items"]
        return s if s and s[0]["state"] in ("success", "failed") else None

    return wait_for(final, timeout=60, what="OTA final state")


def test_ota_rollout_of_an_uploaded_image_walks_to_success(fw_client, auth, fleet):
    device = _online_device(fw_client, auth, fleet)
    final = _rollout_states(fw_client, auth, device, _upload(fw_client, auth)["id"])
    assert (final[0]["device_id"], final[0]["state"]) == (fleet, "success"), final
    assert wait_for(lambda: fw_client.get(f"/api/v1/devices/{device}", headers=auth["viewer"]).get_json()
                    ["fw_version"] == "2.0.0", timeout=30, what="new firmware reported")


def test_ota_with_a_corrupted_image_ends_failed_and_the_device_keeps_its_firmware(app, fw_client, auth, fleet,
                                                                                   s3_server, uid):
    device = _online_device(fw_client, auth, fleet)
    fw = _upload(fw_client, auth)
    with app.extensions["device_manager"].db.transaction() as cur:
        cur.execute("SELECT object_key FROM firmware_images WHERE id = %s", (fw["id"],))
        key = cur.fetchone()[0]
    corrupt = IMAGE[:1000] + bytes([IMAGE[1000] ^ 0xFF]) + IMAGE[1001:]  # same size, one byte flipped in storage
    Minio(f"127.0.0.1:{s3_server.port}", access_key="test", secret_key="testtest", secure=False).put_object(
        f"e2e-fw-{uid}", key, io.BytesIO(corrupt), len(corrupt))
    final = _rollout_states(fw_client, auth, device, fw["id"])
    assert (final[0]["state"], final[0]["detail"]) == ("failed", "sha256 mismatch"), final
    assert fw_client.get(f"/api/v1/devices/{device}", headers=auth["viewer"]).get_json()["fw_version"] == "1.0.0"


class CommandTap:
    """Sees a device's commands and acks on the broker, and can publish on its command topic as an attacker who got
    past the broker's ACLs (the harness's all-topics account): the signature is what still stops it."""

    def __init__(self, port: int, device_id: str):
        self.topic = f"iot/{device_id}/command"
        self.commands: list[dict] = []
        self.acks: list[dict] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = test_mqtt.client(CallbackAPIVersion.VERSION2, client_id=f"tap-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_: c.subscribe([(self.topic, 2), (self.topic + "/ack", 2)])
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10), "tap did not subscribe"

    def _on_message(self, _client, _userdata, msg):
        with self._lock:
            (self.acks if msg.topic.endswith("/ack") else self.commands).append(json.loads(msg.payload))

    def ack(self, cmd_id: str) -> dict | None:
        """The device's answer to cmd_id, once it came."""
        with self._lock:
            return next((a for a in self.acks if a["cmd_id"] == cmd_id), None)

    def close(self):
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def test_a_tampered_or_unsigned_command_is_rejected_by_the_device_and_not_carried_out(client, auth, fleet,
                                                                                      mqtt_broker):
    device = _online_device(client, auth, fleet)
    tap = CommandTap(mqtt_broker.port, fleet)
    try:
        genuine = client.post(f"/api/v1/devices/{device}/commands", headers=auth["operator"],
                              json={"cmd": "update_config", "params": {"send_interval_s": 7}}).get_json()
        sent = wait_for(lambda: next((c for c in tap.commands if c["cmd_id"] == genuine["cmd_id"]), None),
                        what="the signed command on the broker")
        assert wait_for(lambda: tap.ack(genuine["cmd_id"]), what="genuine ack")["result"] == "accepted"
        forged = {**sent, "cmd_id": str(uuid.uuid4()), "params": {"send_interval_s": 1}}  # its signature, new params
        unsigned = {k: v for k, v in {**sent, "cmd_id": str(uuid.uuid4()), "cmd": "reboot", "params": {}}.items()
                    if k != "sig"}
        for attack in (forged, unsigned):
            tap.client.publish(tap.topic, json.dumps(attack), qos=2)
        answers = [wait_for(lambda a=a: tap.ack(a["cmd_id"]), what="ack of the attack") for a in (forged, unsigned)]
        assert [(a["result"], a["detail"]) for a in answers] == [("rejected", "bad signature"),
                                                                 ("rejected", "missing signature")]
        # The device still takes the server's signed commands after the attacks.
        status = client.post(f"/api/v1/devices/{device}/commands", headers=auth["operator"],
                             json={"cmd": "request_status"}).get_json()
        assert wait_for(lambda: tap.ack(status["cmd_id"]), what="status ack")["result"] == "accepted"
    finally:
        tap.close()
