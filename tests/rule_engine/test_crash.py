"""SIGKILL the rule engine process mid-stream: no event is lost, none is duplicated, every change is published."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from iothub import topology
from tests.rule_engine.conftest import Tap
from tests.rule_engine.helpers import ingest
from tests.support.poll import wait_for
from tests.support.procs import free_port

DEVICES, READINGS, RUN = 20, 300, 5  # each device: 5 readings above the threshold, 5 below, repeated


@pytest.fixture
def spawn(pg_dsn, amqp_url, db, tmp_path):
    """Starts `python -m rule_engine` on the run's database and vhost; yields (start, log tail, db)."""
    log = open(tmp_path / "rule-engine.log", "ab")  # noqa: SIM115 - closed at teardown
    env = os.environ | {"DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url, "METRICS_PORT": str(free_port()),
                        "IOTHUB_ENV": "development", "LOG_LEVEL": "WARNING", "RULE_BATCH_SIZE": "50",
                        "RULE_PREFETCH": "100", "OUTBOX_INTERVAL_S": "0.2"}
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        procs.append(subprocess.Popen([sys.executable, "-m", "rule_engine"], env=env, stdout=log,
                                      stderr=subprocess.STDOUT))
        return procs[-1]

    yield start, lambda: (tmp_path / "rule-engine.log").read_text()[-3000:], db
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    log.close()


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
    start, log_tail, db = spawn
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
    expected_events = DEVICES * (READINGS // (2 * RUN))
    try:
        for fraction in (0.15, 0.5):  # kill twice, at different points of the stream
            proc = start()
            wait_for(lambda f=fraction, p=proc: _counts(db, rule_id)[0] >= 2 * expected_events * f or p.poll(),
                     timeout=60, what=f"{fraction:.0%} of the changes stored")
            assert proc.poll() is None, log_tail()
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert _counts(db, rule_id)[2] < DEVICES, "the stream finished before the kill"
        start()
        wait_for(lambda: _counts(db, rule_id) == (2 * expected_events, 0, DEVICES), timeout=120,
                 what="all readings evaluated and every change published")
        with db.transaction() as cur:
            cur.execute("SELECT device_id, count(*), count(*) FILTER (WHERE status = 'resolved' AND count = %s), "
                        "count(DISTINCT first_ts) FROM events WHERE rule_id = %s GROUP BY device_id",
                        (RUN, rule_id))
            per_device = {row[0]: row[1:] for row in cur.fetchall()}
            cur.execute("SELECT message_id::text FROM outbox WHERE payload->'event'->>'rule_id' = %s", (rule_id,))
            change_ids = {row[0] for row in cur.fetchall()}
        per_cycle = READINGS // (2 * RUN)
        assert per_device == {d: (per_cycle, per_cycle, per_cycle) for d in devices}
        received = wait_for(lambda: change_ids <= {p.message_id for _, p, _ in tap.drain()} and tap.messages,
                            timeout=30, what="every stored change published")
        bodies = [orjson.loads(b) for _, _, b in received]
        assert {b["change_id"] for b in bodies} == change_ids  # duplicates allowed (at-least-once), none missing
        assert sorted({(b["event"]["id"], b["change"]) for b in bodies}) == sorted(
            {(b["event"]["id"], c) for b in bodies for c in ("opened", "resolved")})
    finally:
        tap.close()
