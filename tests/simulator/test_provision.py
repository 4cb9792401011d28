"""`python -m simulator provision` registers the fleet in PostgreSQL, idempotently."""

from __future__ import annotations

import os
import subprocess
import sys

from simulator.provision import provision
from simulator.values import type_for_index
from tests.simulator.conftest import make_settings
from tests.support.procs import ROOT


def test_provision_inserts_devices_joined_to_their_types(db, pg_dsn, uid):
    prefix = f"p{uid}"
    s = make_settings("provision", "--devices", "30", "--id-prefix", prefix, "--database-url", pg_dsn,
                      "--fw-version", "1.2.3")
    assert provision(s) == 30
    assert provision(s) == 0  # ON CONFLICT (device_id) DO NOTHING
    with db.transaction() as cur:
        cur.execute("SELECT d.device_id, t.name, d.fw_version, d.metadata FROM devices d "
                    "JOIN device_types t ON t.id = d.device_type_id WHERE d.device_id LIKE %s ORDER BY 1",
                    (f"{prefix}-%",))
        rows = cur.fetchall()
    assert [r[0] for r in rows] == [s.device_id(i) for i in range(30)]
    assert [r[1] for r in rows] == [type_for_index(i, s.type_mix) for i in range(30)]
    assert {r[1] for r in rows} == {"power_meter_dc", "power_meter_ac"}
    assert all(r[2] == "1.2.3" and r[3] == {"simulated": True} for r in rows)


def test_provision_cli_registers_ten_thousand_devices(db, pg_dsn, uid):
    prefix = f"q{uid}"
    subprocess.run([sys.executable, "-m", "simulator", "provision", "--count", "10000", "--id-prefix", prefix],
                   env={**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": pg_dsn, "IOTHUB_ENV": "development"},
                   check=True, capture_output=True, timeout=120)
    with db.transaction() as cur:  # how fast is the benchmark's business (bench/), not a test's
        cur.execute("SELECT count(*) FROM devices WHERE device_id LIKE %s", (f"{prefix}-%",))
        assert cur.fetchone()[0] == 10000


def test_provision_stores_each_devices_command_key_as_the_device_manager_reads_it(db, pg_dsn, uid):
    from iothub.command_keys import parse_kek, unwrap
    from simulator.keys import device_key
    from tests.simulator.conftest import KEK

    prefix = f"k{uid}"
    s = make_settings("provision", "--devices", "3", "--id-prefix", prefix, "--database-url", pg_dsn)
    provision(s)
    query = ("SELECT d.device_id, k.wrapped_key, k.version FROM device_command_keys k JOIN devices d "
             "ON d.id = k.device_id WHERE d.device_id LIKE %s ORDER BY 1")
    with db.transaction() as cur:
        cur.execute(query, (f"{prefix}-%",))
        first = cur.fetchall()
    assert [unwrap(parse_kek(KEK), d, bytes(w)) for d, w, _ in first] == [
        device_key(s.command_key_seed, s.device_id(i)) for i in range(3)]
    provision(s)  # again: every device keeps the key it has
    with db.transaction() as cur:
        cur.execute(query, (f"{prefix}-%",))
        assert [(d, bytes(w), v) for d, w, v in cur.fetchall()] == [(d, bytes(w), v) for d, w, v in first]
