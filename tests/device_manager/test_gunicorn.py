"""The service as deployed: gunicorn "device_manager:create_app()" configured only by environment variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.poll import wait_for
from tests.support.procs import free_port, port_open


@pytest.fixture
def served(pg_dsn, mqtt_broker, tmp_path, uid):
    """A 2-worker gunicorn on a free port; yields (base URL, stderr log path)."""
    port = free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {**os.environ, "IOTHUB_ENV": "production", "JWT_SECRET_KEY": f"gunicorn-secret-{uid}-0123456789abcdef",
           "DATABASE_URL": pg_dsn, "MQTT_PORT": str(mqtt_broker.port), "LOG_LEVEL": "INFO",
           "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "COMMAND_KEY_KEK": "33" * 32}
    log = tmp_path / "gunicorn.log"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with open(log, "wb") as out:
        proc = subprocess.Popen([gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "device_manager:create_app()"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=30, what="gunicorn")
        assert proc.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}", log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def test_served_by_gunicorn(served, users):
    base, log = served
    assert requests.get(f"{base}/healthz", timeout=30).json() == {"status": "ok"}
    ready = wait_for(lambda: requests.get(f"{base}/readyz", timeout=30).status_code == 200, what="readyz")
    assert ready
    login = requests.post(f"{base}/api/v1/auth/login", timeout=30,
                          json={"email": users["viewer"]["email"], "password": users["viewer"]["password"]})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert requests.get(f"{base}/api/v1/devices", headers=headers, timeout=30).status_code == 200
    denied = requests.post(f"{base}/api/v1/devices", headers=headers, json={}, timeout=30)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    for _ in range(20):  # spread over both workers; the multiprocess scrape must count every one of them
        assert requests.get(f"{base}/api/v1/device-types", headers=headers, timeout=30).status_code == 200
    scrape = requests.get(f"{base}/metrics", timeout=30).text
    counted = [line for line in scrape.splitlines() if line.startswith("iothub_api_requests_total{")
               and 'route="/api/v1/device-types"' in line and 'status="200"' in line]
    assert len(counted) == 1 and float(counted[0].rsplit(" ", 1)[1]) == 20.0, counted

    def access_lines():
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        return [x for x in lines if x.get("logger") == "device_manager.access" and x.get("route") == "/api/v1/devices"]

    lines = wait_for(lambda: len(access_lines()) >= 2 and access_lines(), what="JSON access log")
    assert {x["status"] for x in lines} == {200, 403} and all(x["service"] == "device-manager" for x in lines)


def test_gunicorn_refuses_to_start_without_secret(pg_dsn, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET_KEY"}
    env.update({"IOTHUB_ENV": "production", "DATABASE_URL": pg_dsn})
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    proc = subprocess.run([gunicorn, "-w", "1", "-b", f"127.0.0.1:{free_port()}", "device_manager:create_app()"],
                          env=env, capture_output=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert b"JWT_SECRET_KEY must be set" in proc.stderr + proc.stdout
