"""The load: a provisioned fleet per load step, driven by simulator processes that write a ledger of every send."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from bench.measure import LedgerRow, read_ledger
from bench.profiles import Profile
from tests.support import mqtt as test_mqtt

SIM_RATE_PER_PROCESS = 3000  # one simulator process tops out near 5,700 telemetry/s on this machine
POWER_ON_S = 1.0  # hellos and retained statuses spread over a second, not one burst


@dataclass(frozen=True)
class Fleet:
    """One load step's devices: PREFIX-000000.., each sending a datagram every send_interval seconds."""

    prefix: str
    rate: float
    profile: Profile
    send_interval: float
    samples: int

    @property
    def devices(self) -> int:
        """How many devices offer `rate` datagrams/s."""
        return max(1, int(self.rate * self.send_interval))

    @property
    def warmup(self) -> float:
        """Seconds until every device has sent once, so the offered rate is steady after it."""
        return POWER_ON_S + self.send_interval

    def device_id(self, index: int) -> str:
        """The simulator's id of device `index`."""
        return f"{self.prefix}-{index:06d}"

    def sample(self, count: int = 10) -> list[str]:
        """`count` device ids spread over the fleet (for the archive probe)."""
        step = max(1, self.devices // count)
        return [self.device_id(i) for i in range(0, self.devices, step)][:count]


def _sim_args(mqtt_port: int, dsn: str, fleet: Fleet) -> list[str]:
    return ["--mqtt-port", str(mqtt_port), "--id-prefix", fleet.prefix, "--database-url", dsn,
            "--type-mix", fleet.profile.sim_type_mix(), "--metrics-port", "0", "--log-level", "WARNING"]


def provision(mqtt_port: int, dsn: str, fleet: Fleet) -> None:
    """Register a fleet (before the services start, as an installed fleet would be)."""
    subprocess.run([sys.executable, "-m", "simulator", "provision", "--devices", str(fleet.devices),
                    *_sim_args(mqtt_port, dsn, fleet)], check=True, env={**os.environ, "IOTHUB_ENV": "development"})


def simulate(mqtt_port: int, dsn: str, fleet: Fleet, duration: float, ledger: Path) -> list[LedgerRow]:
    """Drive the fleet at its rate for `duration` seconds; return every message the simulators published."""
    for old in ledger.parent.glob(ledger.name + ".*"):  # the simulator appends; never mix two runs
        old.unlink()
    processes = max(1, math.ceil(fleet.rate / SIM_RATE_PER_PROCESS))
    per_proc = math.ceil(fleet.devices / processes)
    procs = []
    for i in range(processes):
        count = min(per_proc, fleet.devices - i * per_proc)
        procs.append(subprocess.Popen([
            sys.executable, "-m", "simulator", "run", *_sim_args(mqtt_port, dsn, fleet), "--devices", str(count),
            "--start-index", str(i * per_proc), "--rate", str(fleet.rate / processes), "--duration", str(duration),
            "--sampling-interval", str(fleet.send_interval / fleet.samples),
            "--samples-per-datagram", str(fleet.samples), "--ramp", str(POWER_ON_S), "--ledger", f"{ledger}.{i}"],
            env={**os.environ, **test_mqtt.env(test_mqtt.FLEET)}))  # TLS, the fleet's account (as the tests do)
    for proc in procs:
        proc.wait(duration + 120)
    rows = []
    for part in sorted(ledger.parent.glob(ledger.name + ".*")):
        rows += read_ledger(part)
    return rows


def seed_rules(dsn: str) -> None:
    """A realistic rule set: a few percent of readings breach; every event notifies through the log channel."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("""INSERT INTO rules (name, scope, device_type, metric, operator, threshold, severity) VALUES
            ('DC overvoltage', 'device_type', 'power_meter_dc', 'voltage_dc', 'gt', 795, 'warning'),
            ('AC overfrequency', 'device_type', 'power_meter_ac', 'frequency', 'gt', 50.09, 'warning'),
            ('AC low power factor', 'device_type', 'power_meter_ac', 'pf', 'lt', 0.921, 'info')""")
        cur.execute("INSERT INTO subscriptions (name, channel, target, min_severity) "
                    "VALUES ('bench log', 'log', 'bench', 'info')")
    conn.close()
