"""`make run`'s script: Mosquitto + SeaweedFS + honcho come up on the configured ports and Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from iothub.mqtt_tls import MqttAuth
from tests.simulator.conftest import Subscriber
from tests.support.poll import wait_for
from tests.support.procs import ROOT, free_port, port_open

pytestmark = pytest.mark.slow


def test_run_local_starts_the_stack_and_ctrl_c_stops_everything(db, pg_dsn, uid, tmp_path: Path):
    ports = {name: free_port() for name in ("mqtt", "mqtt_cert", "s3", "master", "volume", "filer", "webdav", "admin",
                                            "iceberg", "lance")}
    env_file = tmp_path / "test.env"
    base = (ROOT / ".env.development").read_text()
    env_file.write_text(base + f"""
DATABASE_URL={pg_dsn}
MQTT_PORT={ports["mqtt"]}
MQTT_CERT_PORT={ports["mqtt_cert"]}
S3_ENDPOINT=127.0.0.1:{ports["s3"]}
SIM_ID_PREFIX=r{uid}
SIM_DEVICES=3
SIM_SEND_INTERVAL_S=0.5
METRICS_PORT=0
""")
    procfile = tmp_path / "Procfile"
    procfile.write_text("simulator: python -m simulator provision && exec python -m simulator run\n")
    env = {**os.environ, "ENV_FILE": str(env_file), "PROCFILE": str(procfile), "RUN_DIR": str(tmp_path / "run"),
           **{f"SEAWEED_{k.upper()}_PORT": str(v) for k, v in ports.items() if k not in ("mqtt", "mqtt_cert", "s3")}}
    out = tmp_path / "run.log"
    with out.open("wb") as log:
        proc = subprocess.Popen([str(ROOT / "scripts" / "run-local.sh")], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: (port_open(ports["mqtt"]) and port_open(ports["s3"])) or proc.poll() is not None,
                 timeout=90, what="Mosquitto and SeaweedFS")
        assert proc.poll() is None, out.read_text()[-3000:]
        # TLS with the run's own development CA; the bridge account of .env.development reads device data.
        bridge = MqttAuth(ca_file=str(tmp_path / "run" / "certs" / "ca.crt"), username="iothub-bridge",
                          password="iothub-dev-mqtt-bridge")
        sub = Subscriber(ports["mqtt"], f"iot/r{uid}-000000/telemetry", auth=bridge)
        try:
            wait_for(lambda: len(sub.messages) >= 2, timeout=60, what="simulated telemetry")
        finally:
            sub.close()
        with db.transaction() as cur:
            cur.execute("SELECT count(*) FROM devices WHERE device_id LIKE %s", (f"r{uid}-%",))
            assert cur.fetchone()[0] == 3
            cur.execute("SELECT count(*) FROM device_command_keys k JOIN devices d ON d.id = k.device_id "
                        "WHERE d.device_id LIKE %s", (f"r{uid}-%",))
            assert cur.fetchone()[0] == 3  # provisioned with their command keys (.env.development's seed and KEK)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(60)
    text = out.read_text()
    assert "simulator.1 stopped (rc=0)" in text and "stopping Mosquitto and SeaweedFS" in text
    wait_for(lambda: not port_open(ports["mqtt"]) and not port_open(ports["s3"]), timeout=30, what="ports closed")
    pgrep = subprocess.run(["pgrep", "-s", str(proc.pid)], check=False, capture_output=True)
    assert pgrep.returncode == 1, pgrep.stdout  # no service left behind in the script's session
