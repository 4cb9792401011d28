"""A simulated device trusts only signed commands and verified firmware (spec: Transport security, REQ-OTA-001/003)."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from iothub.contract.signing import stamp
from simulator.fleet import Fleet
from tests.simulator.conftest import ListSink, command, fleet_of, make_settings, run_ticks, signed
from tests.support.poll import wait_for

IMAGE = bytes(range(256)) * 40  # 10 KiB of "firmware"
GOOD = {"fw_version": "2.0.0", "fw_sha256": hashlib.sha256(IMAGE).hexdigest(), "fw_size_bytes": len(IMAGE)}


def acks(sink) -> dict[str, dict]:
    """cmd_id -> the device's ack."""
    return {b["cmd_id"]: b for b in map(orjson.loads, sink.bodies("/command/ack"))}


def booted(*flags: str):
    fleet, sink = fleet_of("--devices", "1", *flags)
    run_ticks(fleet, 0.2)
    return fleet, sink, fleet.devices[0]


def unsigned(cmd_id: str, cmd: str, params: dict) -> dict:
    now = datetime.now(UTC)
    return {"v": 2, "cmd_id": cmd_id, "ts": stamp(now), "exp": stamp(now + timedelta(minutes=5)), "cmd": cmd,
            "params": params}


def test_a_missing_signature_is_rejected_and_nothing_runs():
    fleet, sink, dev = booted()
    cmd_id = str(uuid.uuid4())
    fleet.handle_command(dev.device_id, orjson.dumps(unsigned(cmd_id, "reboot", {})), 1)
    assert (acks(sink)[cmd_id]["result"], acks(sink)[cmd_id]["detail"]) == ("rejected", "missing signature")
    assert dev.epoch == 0  # not rebooted


def test_tampered_params_are_rejected_and_the_config_is_unchanged():
    fleet, sink, dev = booted()
    cmd_id = str(uuid.uuid4())
    body = orjson.loads(signed(dev.device_id, cmd_id, "update_config", {"send_interval_s": 30}))
    body["params"]["send_interval_s"] = 1  # a man in the middle speeds the meter up
    before = dev.config
    fleet.handle_command(dev.device_id, orjson.dumps(body), 1)
    assert (acks(sink)[cmd_id]["result"], acks(sink)[cmd_id]["detail"]) == ("rejected", "bad signature")
    assert dev.config == before


def test_a_command_signed_for_another_device_or_with_another_seed_is_rejected():
    fleet, sink, dev = booted()
    other, foreign = str(uuid.uuid4()), str(uuid.uuid4())
    fleet.handle_command(dev.device_id, signed("someone-else", other, "reboot", {}), 1)
    fleet.handle_command(dev.device_id, signed(dev.device_id, foreign, "reboot", {}, seed="another fleet"), 1)
    assert {acks(sink)[i]["detail"] for i in (other, foreign)} == {"bad signature"}
    assert dev.epoch == 0


def test_an_expired_command_is_rejected_but_a_fresh_one_runs():
    fleet, sink, dev = booted()
    old, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    fleet.handle_command(dev.device_id, signed(dev.device_id, old, "reboot", {}, ttl_s=-1), 1)
    assert acks(sink)[old]["detail"] == "expired" and dev.epoch == 0
    fleet.handle_command(dev.device_id, signed(dev.device_id, fresh, "reboot", {}), 1)
    assert acks(sink)[fresh]["result"] == "accepted" and dev.epoch == 1


def test_a_device_without_a_key_rejects_everything():
    sink = ListSink()
    fleet = Fleet(make_settings("--devices", "1", SIM_COMMAND_KEY_SEED=""), sink)
    fleet.start(0.0)
    run_ticks(fleet, 0.2)
    cmd_id = command(fleet, fleet.devices[0].device_id, "request_status", {}, 1)
    assert acks(sink)[cmd_id]["detail"] == "no command key provisioned"


class _Firmware(BaseHTTPRequestHandler):
    images: dict[str, bytes] = {}

    def do_GET(self):
        data = self.images.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *_):
        pass


@pytest.fixture(scope="module")
def firmware_server():
    """A real HTTP server: /good.bin is IMAGE, /corrupt.bin has one byte flipped, /short.bin lacks its tail."""
    _Firmware.images = {"/good.bin": IMAGE, "/corrupt.bin": IMAGE[:100] + b"\xff" + IMAGE[101:],
                        "/short.bin": IMAGE[:-1]}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Firmware)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _ota(fleet, sink, dev, url: str) -> list[dict]:
    cmd_id = command(fleet, dev.device_id, "start_ota", {**GOOD, "fw_url": url}, 0.2)
    clock = [0.2]

    def final():
        clock[0] = run_ticks(fleet, 0.5, clock[0], step=0.05)
        states = [b for b in map(orjson.loads, sink.bodies("/ota/status")) if b["cmd_id"] == cmd_id]
        return states if states and states[-1]["ota_state"] in ("success", "failed") else None

    return wait_for(final, timeout=20, what="OTA final state")


@pytest.mark.parametrize(("path", "detail"), [("/corrupt.bin", "sha256 mismatch"),
                                              ("/short.bin", f"size mismatch: {len(IMAGE) - 1} bytes"),
                                              ("/missing.bin", "download failed: HTTP 404")])
def test_a_bad_image_ends_failed_and_the_device_keeps_its_firmware(firmware_server, path, detail):
    fleet, sink, dev = booted("--ota-step", "0.05", "--ota-download")
    states = _ota(fleet, sink, dev, firmware_server + path)
    assert [s["ota_state"] for s in states][-2:] == ["verifying", "failed"]
    assert states[-1]["detail"].startswith(detail)
    assert dev.fw_version == "1.0.0" and dev.epoch == 0  # REQ-OTA-003: no reboot into the new image


def test_a_matching_image_is_applied(firmware_server):
    fleet, sink, dev = booted("--ota-step", "0.05", "--ota-download")
    states = _ota(fleet, sink, dev, firmware_server + "/good.bin")
    assert [s["ota_state"] for s in states][-3:] == ["verifying", "applying", "success"]
    assert dev.fw_version == "2.0.0"


def test_a_replay_inside_the_validity_window_is_answered_but_not_carried_out_again():
    fleet, sink, dev = booted()
    first = signed(dev.device_id, str(uuid.uuid4()), "reboot", {})
    fleet.handle_command(dev.device_id, first, 1)
    for _ in range(20):  # more than the 16 answers always kept
        command(fleet, dev.device_id, "request_status", {}, 1)
    assert dev.epoch == 1
    fleet.handle_command(dev.device_id, first, 1, ("127.0.0.1", 1883))  # captured and sent again
    assert dev.epoch == 1  # not rebooted twice
    cmd_id = orjson.loads(first)["cmd_id"]
    replayed = [b for b in map(orjson.loads, sink.bodies("/command/ack")) if b["cmd_id"] == cmd_id]
    assert [b["result"] for b in replayed] == ["accepted", "accepted"]  # the remembered answer, once more
