"""End to end: API command and OTA rollout -> Mosquitto -> simulator device -> ack -> collector -> API state."""

from __future__ import annotations

import contextlib
import os

import pytest

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
           "WRITERS": "state", "WRITER_BATCH_WAIT": "0.05"}
    sim_args = ("--profile", request.param, "--devices", "1", "--id-prefix", prefix, "--type-mix", "power_meter_dc:1",
                "--connection-mode", "per-device", "--send-interval", "5", "--ota-step", "0.2", "--metrics-port", "0")
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "simulator", "provision", *sim_args, "--database-url", pg_dsn], check=True,
                   capture_output=True, timeout=60, env={**os.environ, "IOTHUB_ENV": "development"})
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


def test_ota_rollout_walks_to_success(client, auth, fleet):
    device = _online_device(client, auth, fleet)
    created = client.post("/api/v1/ota/rollouts", headers=auth["operator"], json={
        "fw_version": "2.0.0", "url": "http://firmware.local/pm-2.0.0.bin", "sha256": "a" * 64,
        "size_bytes": 123456, "device_ids": [device]})
    assert created.status_code == 201, created.get_json()
    rollout = created.get_json()["id"]

    def states():
        return client.get(f"/api/v1/ota/rollouts/{rollout}/devices", headers=auth["viewer"]).get_json()["items"]

    final = wait_for(lambda: (s := states()) and s[0]["state"] == "success" and s, timeout=60, what="OTA success")
    assert final[0]["device_id"] == fleet
    assert wait_for(lambda: client.get(f"/api/v1/devices/{device}", headers=auth["viewer"]).get_json()
                    ["fw_version"] == "2.0.0", timeout=30, what="new firmware reported")
