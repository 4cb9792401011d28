"""SIGKILL in the middle of a stream: no acknowledged message lost, none published under two ids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest
import requests

from iothub import topology
from iothub.contract.ingest import message_id
from tests.collector.conftest import hello, telemetry
from tests.support import mqtt as test_mqtt
from tests.support.poll import wait_for
from tests.support.procs import ROOT, free_port

TOTAL = 6000


def _start_collector(env: dict, log_path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "collector"], env=env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def ready():
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            return requests.get(f"http://127.0.0.1:{env['METRICS_PORT']}/readyz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(ready, timeout=60, interval=0.2, what="collector ready")
    return proc


@pytest.fixture
def collector_env(pg_dsn, amqp_url, mqtt_broker, uid, device) -> dict:
    """Environment of a `python -m collector` subprocess on the run's servers, ingest edge only."""
    return {**os.environ, "IOTHUB_ENV": "development", "DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url,
            "MQTT_PORT": str(mqtt_broker.port), **test_mqtt.env(), "MQTT_CLIENT_ID": f"collector-kill-{uid}",
            "MQTT_TOPIC_PREFIX": device.prefix, "HTTP_INGEST_ENABLED": "false", "METRICS_PORT": str(free_port()),
            "WRITERS": "none", "LOG_LEVEL": "WARNING"}


@pytest.mark.fault
@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(collector_env, device, make_device, tap, tmp_path):
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    env = collector_env
    log_path = tmp_path / "collector.log"
    first = _start_collector(env, log_path)

    def stream():
        device.send(dev, hello(dev, 0, 1), "hello")
        for seq in range(1, TOTAL):
            device.client.publish(f"{device.prefix}iot/{dev}/telemetry", orjson.dumps(telemetry(dev, seq)), qos=1)
            if seq % 100 == 0:
                time.sleep(0.05)  # pacing the load (~2000 msg/s over 3 s), not synchronisation

    publisher = threading.Thread(target=stream, daemon=True)
    publisher.start()
    wait_for(lambda: out.count() >= TOTAL // 5, timeout=60, interval=0.01, what="a fifth of the stream through")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    seen_at_kill = out.count()
    assert seen_at_kill < TOTAL, "the kill came after the stream ended"
    second = _start_collector(env, log_path)
    try:
        publisher.join(60)

        def complete():
            return len({b["msg_id"] for b in out.bodies()}) == TOTAL

        wait_for(complete, timeout=90, interval=0.2, what=f"{TOTAL} distinct msg_ids")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(30)
    bodies = out.bodies()
    assert {b["msg_id"] for b in bodies} == {message_id(dev, 0, seq) for seq in range(TOTAL)}
    assert {b["epoch"] for b in bodies} == {0}
    by_seq: dict[int, set[str]] = {}
    for b in bodies:
        by_seq.setdefault(b["seq"], set()).add(b["msg_id"])
    assert all(len(ids) == 1 for ids in by_seq.values())  # a re-publish reuses its id: stored once downstream
    assert second.returncode == 0, log_path.read_text()[-3000:]
    print(f"published {TOTAL}, on exchange {len(bodies)} ({len(bodies) - TOTAL} re-published with the same id),"
          f" {seen_at_kill} through before the kill")
