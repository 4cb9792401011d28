"""SIGKILL the rule engine process mid-stream: no event is lost, none is duplicated, every change is published."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import orjson
import pytest

from iothub import topology
from tests.rule_engine.conftest import Tap
from tests.rule_engine.helpers import ingest
from tests.support.poll import wait_for
from tests.support.procs import free_port

DEVICES, CYCLES, RUN = 20, 30, 5  # each device: 5 readings above the threshold, 5 below, repeated; then one above
READINGS = CYCLES * 2 * RUN + 1


@pytest.fixture
def spawn(pg_dsn, amqp_url, db, tmp_path):
    """Starts `python -m rule_engine` on the run's database and vhost."""
    log = open(tmp_path / "rule-engine.log", "ab")  # noqa: SIM115 - closed at teardown
    port = free_port()
    env = os.environ | {"DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url, "METRICS_PORT": str(port),
                        "IOTHUB_ENV": "development", "LOG_LEVEL": "WARNING", "RULE_BATCH_SIZE": "50",
                        "RULE_PREFETCH": "100", "OUTBOX_INTERVAL_S": "0.2"}
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        procs.append(subprocess.Popen([sys.executable, "-m", "rule_engine"], env=env, stdout=log,
                                      stderr=subprocess.STDOUT))
        return procs[-1]

    yield SimpleNamespace(start=start, log_tail=lambda: (tmp_path / "rule-engine.log").read_text()[-3000:], db=db,
                          port=port)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    log.close()


def _get(port: int, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.read().decode()


def _counts(db, rule_id: str) -> tuple[int, int, int]:
    with db.transaction() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM outbox "
                    "WHERE payload->'event'->>'rule_id' = %s", (rule_id,))
        outbox, unpublished = cur.fetchone()
        cur.execute("SELECT count(*) FROM rule_engine_devices WHERE device_id LIKE %s AND seq = %s",
                    (f"crash-%-{rule_id[:8]}", READINGS - 1))
        return outbox, unpublished, cur.fetchone()[0]


@pytest.mark.fault
@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_event_and_opens_no_duplicate(spawn, amqp_url, rules, feeder, uid):
    start, log_tail, db = spawn.start, spawn.log_tail, spawn.db
    rule_id = rules(name=f"crash {uid}", scope="device_type", device_type=f"crash-{uid}", metric="temperature",
                    operator="gt", threshold=50)
    devices = [f"crash-{i}-{rule_id[:8]}" for i in range(DEVICES)]
    tap = Tap(amqp_url, topology.EVENTS_EXCHANGE, f"*.threshold.{rule_id}")
    base = time.time() - 10 * READINGS
    sent = 0
    for seq in range(READINGS):
        value = 60 if (seq // RUN) % 2 == 0 else 40
        for device in devices:
            feeder.send(ingest(device, f"crash-{uid}", seq, base + seq, [("temperature", value, "Cel")]), wait=False)
            sent += 1
    feeder.flush(sent)
    expected_changes = DEVICES * (2 * CYCLES + 1)  # opened + resolved per cycle, and the last one opened
    try:
        for fraction in (0.15, 0.5):  # kill twice, at different points of the stream
            proc = start()
            wait_for(lambda f=fraction, p=proc: _counts(db, rule_id)[0] >= expected_changes * f or p.poll(),
                     timeout=60, what=f"{fraction:.0%} of the changes stored")
            assert proc.poll() is None, log_tail()
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert _counts(db, rule_id)[2] < DEVICES, "the stream finished before the kill"
        start()
        wait_for(lambda: _counts(db, rule_id) == (expected_changes, 0, DEVICES), timeout=120,
                 what="all readings evaluated and every change published")
        with db.transaction() as cur:
            cur.execute("SELECT device_id, count(*), count(*) FILTER (WHERE status = 'resolved' AND count = %s), "
                        "count(DISTINCT first_ts) FROM events WHERE rule_id = %s GROUP BY device_id",
                        (RUN, rule_id))
            per_device = {row[0]: row[1:] for row in cur.fetchall()}
            cur.execute("SELECT message_id::text FROM outbox WHERE payload->'event'->>'rule_id' = %s", (rule_id,))
            change_ids = {row[0] for row in cur.fetchall()}
        assert per_device == {d: (CYCLES + 1, CYCLES, CYCLES + 1) for d in devices}
        received = wait_for(lambda: change_ids <= {p.message_id for _, p, _ in tap.drain()} and tap.messages,
                            timeout=30, what="every stored change published")
        bodies = [orjson.loads(b) for _, _, b in received]
        assert {b["change_id"] for b in bodies} == change_ids  # duplicates allowed (at-least-once), none missing
        pairs = {(b["event"]["id"], b["change"]) for b in bodies}
        assert len(pairs) == expected_changes
        assert {c for _, c in pairs} == {"opened", "resolved"}
        metrics = _get(spawn.port, "/metrics")
        assert 'iothub_rule_engine_events_total{change="opened",severity="warning"}' in metrics
        assert "iothub_rule_engine_outbox_backlog 0.0" in metrics
        assert '"ready":true' in wait_for(lambda: _get(spawn.port, "/readyz") if "true" in _get(spawn.port, "/readyz")
                                          else None, what="ready")
    finally:
        tap.close()
