"""A fleet of spec-mode meters (firmware spec v2) through the real stack: QoS 2, no hellos at the default intervals,
pf without a unit, every message published to two brokers, power cycles and redeliveries among them.

One collector reads both brokers (MQTT_BROKERS): the second copy of each message is a duplicate of the first. Each
reading is stored exactly once, with the epoch the simulator's ledger says.
"""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
from collections import Counter

import pytest

from tests.e2e.test_power_cycle import _archive_keys
from tests.support import procs
from tests.support.poll import wait_for
from tests.support.queues import purge_all
from tests.support.services import running_platform, service

pytestmark = pytest.mark.slow
DEVICES = 6


@pytest.fixture
def second_broker(tmp_path):
    """Another Mosquitto with the project's config, for the meters' second broker."""
    workdir = tmp_path / "broker-b"
    workdir.mkdir()
    server = procs.mosquitto(workdir).start()
    yield server
    server.stop()


def _ledger(path) -> tuple[Counter, Counter]:
    """Telemetry keys published, and how many messages of each type."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return (Counter((r["device_id"], int(r["epoch"]), int(r["seq"])) for r in rows if r["msg_type"] == "telemetry"),
            Counter(r["msg_type"] for r in rows))


def _series(db, prefix) -> list[tuple[str, int, int]]:
    with db.transaction() as cur:
        cur.execute("SELECT device_id, epoch, seq FROM telemetry WHERE device_id LIKE %s", (f"{prefix}-%",))
        return [tuple(r) for r in cur.fetchall()]


def _measurements(db, prefix) -> list[dict]:
    with db.transaction() as cur:
        cur.execute("SELECT measurements FROM telemetry WHERE device_id LIKE %s", (f"{prefix}-%",))
        return [m for (ms,) in cur.fetchall() for m in ms]


def test_spec_fleet_on_two_brokers_stores_every_reading_once(platform_env, db, pg_dsn, amqp_url,
                                                             mqtt_broker, second_broker, tmp_path, uid):
    prefix = f"spec{uid}"
    ledger = tmp_path / "ledger.csv"
    both = f"127.0.0.1:{mqtt_broker.port},127.0.0.1:{second_broker.port}"
    sim_args = ("--profile", "spec", "--devices", str(DEVICES), "--id-prefix", prefix,
                "--type-mix", "power_meter_dc:1,power_meter_ac:1", "--connection-mode", "per-device",
                "--brokers", both,
                "--sampling-interval", "0.2", "--send-interval", "1", "--reboot-rate", "0.03",
                "--duplicate-rate", "0.05", "--malformed-rate", "0.02", "--seed", "14", "--metrics-port", "0")
    subprocess.run([sys.executable, "-m", "simulator", "provision", *sim_args, "--database-url", pg_dsn], check=True,
                   capture_output=True, timeout=60, env={**os.environ, "IOTHUB_ENV": "development"})
    purge_all(amqp_url)
    with running_platform({**platform_env, "MQTT_BROKERS": both}, tmp_path):
        _run_fleet(sim_args, ledger, platform_env, tmp_path)
        _check(db, prefix, ledger, platform_env)


def _run_fleet(sim_args, ledger, env, tmp_path) -> None:
    """Run the simulator for its duration and wait for it to end."""
    sim = service("simulator", env, tmp_path, args=("run", *sim_args, "--duration", "25", "--ledger", str(ledger)))
    sim.start(wait_healthy=False)
    try:
        sim.proc.wait(90)
        assert sim.proc.returncode == 0, sim.log_tail()
    finally:
        with contextlib.suppress(Exception):
            sim.stop()


def _check(db, prefix, ledger, platform_env) -> None:
    """Series and archive hold what the ledger says was published, each once."""
    expected, kinds = _ledger(ledger)
    assert kinds["hello"] == 0  # REQ-HELLO-001: a 1 s send interval never needs a hello
    assert len(expected) > 100 and {e for _, e, _ in expected} >= {0, 1}  # readings, and power cycles among them
    wait_for(lambda: Counter(_series(db, prefix)) == expected, timeout=90, what="series == ledger, each once")
    devices = sorted({d for d, _, _ in expected})
    wait_for(lambda: Counter(_archive_keys(db, platform_env, devices)) == expected, timeout=90,
             what="archive == ledger, each once")
    pf = [m for m in _measurements(db, prefix) if m["type"] == "pf"]
    assert pf and all(m["unit"] == "" for m in pf)  # sent without a unit: stored as dimensionless
    with db.transaction() as cur:  # seen, and went offline by its status message when the simulator stopped
        cur.execute("SELECT count(*) FROM devices WHERE device_id LIKE %s AND last_seen IS NOT NULL "
                    "AND connection_status <> 'unknown'", (f"{prefix}-%",))
        assert cur.fetchone()[0] == DEVICES
