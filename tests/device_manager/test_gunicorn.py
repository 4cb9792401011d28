"""The service as deployed: gunicorn with gunicorn.conf.py serving HTTPS, configured only by environment variables."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.device_manager.conftest import REDIS_URL
from tests.support import mqtt as test_mqtt
from tests.support.poll import wait_for
from tests.support.procs import free_port, port_open

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
CONF = "python:device_manager.gunicorn_conf"  # as the image runs it


def production_env(pg_dsn, mqtt_broker, amqp_url, tls_files, uid, **extra) -> dict[str, str]:
    """What a production pod gets: every secret, HTTPS from the certificate files, the login limit in Redis."""
    return {**os.environ, "IOTHUB_ENV": "production", "JWT_SECRET_KEY": f"gunicorn-secret-{uid}-0123456789abcdef",
            # The run's PostgreSQL trusts local connections; the password is there because production requires one.
            "DATABASE_URL": pg_dsn.replace("postgresql://postgres@", "postgresql://postgres:unchecked@"),
            "AMQP_URL": amqp_url, "MQTT_PORT": str(mqtt_broker.port), **test_mqtt.env(test_mqtt.COMMANDS),
            "MQTT_ADMIN_PASSWORD": test_mqtt.ADMIN[1], "COMMAND_KEY_KEK": "33" * 32, "RATELIMIT_STORAGE_URI": REDIS_URL,
            "RATELIMIT_KEY_PREFIX": f"iothub-test-{uid}", "S3_ACCESS_KEY": "unused", "S3_SECRET_KEY": "unused",
            "LOG_LEVEL": "INFO", **tls_files.server_env(), **extra}


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log: Path, workers: int = 2):
    """gunicorn with the packaged settings on a free port, as the image runs it; yields the HTTPS base URL."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([GUNICORN, "-c", CONF, "-w", str(workers), "-b", f"127.0.0.1:{port}",
                                 "device_manager:create_app()"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=30, what="gunicorn")
        assert proc.poll() is None, log.read_text()
        yield f"https://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


@pytest.fixture
def served(pg_dsn, mqtt_broker, amqp_url, tls_files, tmp_path, uid, monkeypatch):
    """A 2-worker gunicorn serving HTTPS; yields (base URL, log path). Clients trust the run's CA."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files.ca)
    env = production_env(pg_dsn, mqtt_broker, amqp_url, tls_files, uid, PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, log) as base:
        yield base, log


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


@pytest.mark.parametrize("name", ["JWT_SECRET_KEY", "DATABASE_URL", "MQTT_PASSWORD", "RATELIMIT_STORAGE_URI",
                                  "TLS_CERT_FILE"])
def test_gunicorn_refuses_to_start_without_a_secret(pg_dsn, mqtt_broker, amqp_url, tls_files, uid, name):
    env = {k: v for k, v in production_env(pg_dsn, mqtt_broker, amqp_url, tls_files, uid).items() if k != name}
    proc = subprocess.run([GUNICORN, "-c", CONF, "-w", "1", "-b", f"127.0.0.1:{free_port()}",
                           "device_manager:create_app()"], env=env, capture_output=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert name.encode() in proc.stderr and b" must be set" in proc.stderr, proc.stderr


def test_plain_http_is_not_answered_and_an_unknown_ca_is_refused(served, tmp_path):
    from tests.support.tls import make_tls_files

    base, _ = served
    with pytest.raises(requests.ConnectionError):
        requests.get(base.replace("https://", "http://") + "/healthz", timeout=10)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(base + "/healthz", timeout=10, verify=make_tls_files(tmp_path).ca)
