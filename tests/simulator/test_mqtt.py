"""Round trips over the project's Mosquitto: telemetry, commands, OTA, config, Last Will, ledger, metrics."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from iothub.contract import parse
from iothub.contract.topics import command_topic
from tests.simulator.conftest import signed
from tests.support import mqtt as test_mqtt
from tests.support.poll import wait_for
from tests.support.procs import ROOT, free_port

OTA = {"fw_version": "2.1.0", "url": "https://fw.example/2.1.0.bin", "sha256": "cd" * 32, "size": 4096}


def first(items: list):
    """The first item, for wait_for probes over lists."""
    return items[0] if items else None


def test_telemetry_arrives_as_valid_envelopes_after_a_hello(run_fleet, subscriber, uid):
    prefix = f"t{uid}"
    run_fleet("--devices", "4", "--id-prefix", prefix, "--send-interval", "0.3", "--sampling-interval", "0.1")
    ids = [f"{prefix}-{i:06d}" for i in range(4)]
    for dev in ids:
        wait_for(lambda dev=dev: len(subscriber.envelopes(dev, "telemetry")) >= 3, what=f"telemetry of {dev}")
        envs = [e for e in subscriber.envelopes(dev) if e.is_sequenced]
        assert envs[0].msg_type == "hello" and envs[0].seq == 0
        assert [e.seq for e in envs] == list(range(len(envs)))
        status = subscriber.envelopes(dev, "status")
        assert status[0].body["status"] == "online"
        telemetry = subscriber.envelopes(dev, "telemetry")[0].body["measurements"]
        assert len(telemetry) == 3 * (3 if telemetry[0]["type"] == "voltage_dc" else 6)


def test_command_yields_an_ack_with_the_same_cmd_id(run_fleet, subscriber, uid):
    dev = f"c{uid}-000000"
    run_fleet("--devices", "1", "--id-prefix", f"c{uid}", "--send-interval", "5")
    wait_for(lambda: subscriber.envelopes(dev, "hello"), what="hello")
    cmd_id = str(uuid.uuid4())
    subscriber.publish(command_topic(dev), signed(dev, cmd_id, "request_status", {}))
    ack = wait_for(lambda: first([e for e in subscriber.envelopes(dev, "command_ack") if e.body["cmd_id"] == cmd_id]),
                   what="command_ack")
    assert ack.body["result"] == "accepted"
    wait_for(lambda: len(subscriber.envelopes(dev, "hello")) >= 2, what="status hello")
    unknown = str(uuid.uuid4())
    subscriber.publish(command_topic(dev), signed(dev, unknown, "warp_drive", {}))
    ack = wait_for(lambda: first([e for e in subscriber.envelopes(dev, "command_ack") if e.body["cmd_id"] == unknown]),
                   what="unsupported ack")
    assert ack.body["result"] == "unsupported"


def test_start_ota_walks_to_success_then_hello_with_new_firmware(run_fleet, subscriber, uid):
    dev = f"o{uid}-000000"
    run_fleet("--devices", "1", "--id-prefix", f"o{uid}", "--ota-step", "0.05", "--send-interval", "5")
    wait_for(lambda: subscriber.envelopes(dev, "hello"), what="hello")
    cmd_id = str(uuid.uuid4())
    subscriber.publish(command_topic(dev), signed(dev, cmd_id, "start_ota", OTA))
    wait_for(lambda: [e for e in subscriber.envelopes(dev, "hello") if e.body["fw_version"] == "2.1.0"],
             what="hello with the new firmware")
    states = [(e.body["ota_state"], e.body["progress_pct"]) for e in subscriber.envelopes(dev, "ota_status")]
    assert [s for s, _ in states] == ["downloading"] * 5 + ["verifying", "applying", "success"]
    assert states[-1][1] == 100
    acks = subscriber.envelopes(dev, "command_ack")
    assert (acks[0].body["cmd_id"], acks[0].body["result"]) == (cmd_id, "accepted")
    assert subscriber.envelopes(dev, "hello")[-1].seq == 0


def test_update_config_changes_the_send_interval(run_fleet, subscriber, uid):
    dev = f"u{uid}-000000"
    run_fleet("--devices", "1", "--id-prefix", f"u{uid}", "--send-interval", "30", "--sampling-interval", "0.1")
    wait_for(lambda: subscriber.envelopes(dev, "hello"), what="hello")
    subscriber.publish(command_topic(dev), signed(dev, str(uuid.uuid4()), "update_config",
                                                          {"send_interval_s": 0.2}))
    wait_for(lambda: len(subscriber.envelopes(dev, "telemetry")) >= 8, what="faster telemetry")
    stamps = [e.ts.timestamp() for e in subscriber.envelopes(dev, "telemetry")][1:]  # [0] may predate the change
    # Timers are due-based, so a late tick is caught up by the next: the mean interval is the configured one.
    mean = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    assert 0.15 < mean < 0.3, stamps
    assert len(subscriber.envelopes(dev, "telemetry")[-1].body["measurements"]) in (2 * 3, 2 * 6)


def sim_process(port: int, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **test_mqtt.env(test_mqtt.FLEET)}
    return subprocess.Popen([sys.executable, "-m", "simulator", "--mqtt-port", str(port), *flags], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def test_per_device_last_will_fires_when_the_process_dies(mqtt_broker, subscriber, uid):
    prefix = f"w{uid}"
    metrics_port = free_port()
    proc = sim_process(mqtt_broker.port, "--connection-mode", "per-device", "--devices", "2", "--id-prefix",
                       prefix, "--metrics-port", str(metrics_port))
    try:
        ids = [f"{prefix}-000000", f"{prefix}-000001"]
        for dev in ids:
            wait_for(lambda dev=dev: subscriber.envelopes(dev, "hello"), what=f"hello of {dev}")
        text = wait_for(lambda: _scrape(metrics_port), what="metrics")
        assert 'iothub_simulator_messages_published_total{msg_type="hello"} 2.0' in text
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    for dev in ids:
        offline = wait_for(lambda dev=dev: [e for e in subscriber.envelopes(dev, "status")
                                            if e.body["status"] == "offline"], what=f"Last Will of {dev}")
        assert offline[0].device_id == dev
    late = _retained(mqtt_broker.port, f"iot/{ids[0]}/status")
    assert parse(late, expected_type="status").body["status"] == "offline"


def _scrape(port: int) -> str | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.ConnectionError:
        return None


def _retained(port: int, topic: str) -> bytes:
    from tests.simulator.conftest import Subscriber

    sub = Subscriber(port, topic)
    try:
        return wait_for(lambda: first([p for _, p, retained in sub.messages if retained]), what="retained status")
    finally:
        sub.close()


def test_ledger_records_every_sequenced_message_and_stop_says_offline(mqtt_broker, subscriber, uid, tmp_path: Path):
    prefix = f"l{uid}"
    ledger = tmp_path / "ledger.csv"
    proc = sim_process(mqtt_broker.port, "--devices", "5", "--id-prefix", prefix, "--send-interval", "0.1",
                       "--sampling-interval", "0.1", "--max-messages", "60", "--ledger", str(ledger),
                       "--metrics-port", "0", "--pool-size", "2")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    with ledger.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 50 and rows[0].keys() == {"device_id", "epoch", "seq", "msg_type", "publish_ts"}
    ids = {r["device_id"] for r in rows}
    received = wait_for(lambda: {(e.device_id, e.seq) for d in ids for e in subscriber.envelopes(d)
                                 if e.is_sequenced} >= {(r["device_id"], int(r["seq"])) for r in rows} or None,
                        what="every ledger row on the broker")
    assert received
    for dev in ids:
        assert subscriber.envelopes(dev, "status")[-1].body["status"] == "offline"
