"""The console against the real stack: the device-manager served over HTTPS, the platform (collector stages,
rule-engine, notifier), one simulated power meter, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.device_manager.conftest import (  # noqa: F401  (shared fixtures)
    COMMAND_KEY_KEK,
    create_role_users,
    dm_config,
    make_app,
)
from tests.support import infra, procs
from tests.support import mqtt as test_mqtt
from tests.support.https_server import serve_https
from tests.support.queues import purge_all
from tests.support.services import running_platform, service

pytestmark = pytest.mark.slow
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def console_servers(run_id, tmp_path_factory):
    """A database, a vhost and a Mosquitto of the console's own: its platform runs for the whole session, and
    would otherwise consume the other suites' partitions and topics and write into their tables."""
    name = f"iothub_console_{run_id}"
    dsn = infra.create_database(name)
    amqp = infra.create_vhost(f"iothub-console-{run_id}")
    broker = procs.mosquitto(tmp_path_factory.mktemp("console-mosquitto")).start()
    try:
        yield {"dsn": dsn, "amqp": amqp, "broker": broker}
    finally:
        broker.stop()
        infra.delete_vhost(f"iothub-console-{run_id}")
        infra.drop_database(name)


@pytest.fixture(scope="session")
def stack(console_servers, s3_server, tmp_path_factory):
    """Collector, rule engine and notifier, plus one simulated DC meter (answers commands, walks OTA)."""
    uid = uuid.uuid4().hex[:8]
    logdir = tmp_path_factory.mktemp("console-stack")
    pg_dsn, amqp_url, mqtt_broker = console_servers["dsn"], console_servers["amqp"], console_servers["broker"]
    env = {"IOTHUB_ENV": "development", "DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url, "MQTT_HOST": "127.0.0.1",
           "MQTT_PORT": str(mqtt_broker.port), "MQTT_CLIENT_ID": f"collector-{uid}", "HTTP_INGEST_ENABLED": "false",
           "SERIES_BACKENDS": "postgres", "ARCHIVE_BACKEND": "s3", "S3_ENDPOINT": f"127.0.0.1:{s3_server.port}",
           "S3_ACCESS_KEY": "test", "S3_SECRET_KEY": "testtest", "S3_BUCKET": f"console-{uid}",
           "WRITER_BATCH_WAIT": "0.05", "RULES_MIN_RELOAD_S": "0.2", "NOTIFY_POLL_INTERVAL": "0.1",
           **test_mqtt.env(), "SIM_COMMAND_KEY_SEED": f"console-seed-{uid}", "COMMAND_KEY_KEK": COMMAND_KEY_KEK,
           # The console's rollout form names an external image; tests/device_manager's e2e test downloads real ones.
           "SIM_OTA_DOWNLOAD": "false"}
    prefix = f"con{uid}"
    sim_args = ("--devices", "1", "--id-prefix", prefix, "--type-mix", "power_meter_dc:1",
                "--connection-mode", "per-device", "--send-interval", "1", "--ota-step", "0.2", "--metrics-port", "0")
    subprocess.run([sys.executable, "-m", "simulator", "provision", *sim_args, "--database-url", pg_dsn],
                   check=True, capture_output=True, timeout=60, env={**os.environ, **env})
    purge_all(amqp_url)
    started: dict = {}
    with running_platform(env, logdir, started):
        sim = service("simulator", env, logdir, args=("run", *sim_args)).start(wait_healthy=False)
        try:
            yield {"device_id": f"{prefix}-000000", "dsn": pg_dsn}
        finally:
            with contextlib.suppress(Exception):
                sim.stop()


@pytest.fixture(scope="session")
def console_app(make_app, console_servers):  # noqa: F811
    """A device-manager app of its own (the login limit is per app) on the console's servers."""
    broker = console_servers["broker"]
    return make_app(LOGIN_RATE_LIMIT="1000 per minute", database_url=console_servers["dsn"],
                    amqp_url=console_servers["amqp"], mqtt_port=broker.port,
                    device_ca_cert=str(broker.certs / "device-ca.crt"),
                    device_ca_key=str(broker.certs / "device-ca.key"),
                    device_ca_crl=str(broker.certs / "device-ca.crl"),
                    mqtt_broker_pidfile=str(broker.workdir / "mosquitto.pid"))


@pytest.fixture(scope="session")
def base_url(console_app, tls_files):
    """The app served over HTTPS (the run's CA) on a free port, in a thread."""
    before = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = tls_files.ca  # the tests' own HTTP clients verify the server
    try:
        with serve_https(console_app, tls_files) as url:
            yield url
    finally:
        if before is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = before


@pytest.fixture(scope="session")
def people(console_app):
    """One user per role: role -> (email, password)."""
    return {role: (u["email"], u["password"])
            for role, u in create_role_users(console_app, prefix="console-").items()}


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium (never a browser Playwright downloads)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "chromium is not installed: run make system-deps"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def sign_in(browser, base_url, people):
    """sign_in(role) -> a page signed in as that role (closed after the test)."""
    contexts = []

    def open_as(role: str):
        # Chromium has no way to trust the run's CA here short of an NSS store; the server is ours, on loopback.
        context = browser.new_context(viewport={"width": 1280, "height": 860}, ignore_https_errors=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{base_url}/console/")
        email, password = people[role]
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button:has-text('Sign in')")
        page.wait_for_url(f"{base_url}/console/")
        return page

    yield open_as
    for context in contexts:
        context.close()


def shoot(page, name: str) -> None:
    """Save a screenshot for docs/console.md."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def find_device(page, device_id: str):
    """Search the devices list for the device as an operator would; returns its row's link."""
    page.click("nav >> text=Devices")
    page.wait_for_load_state("load")  # htmx (a deferred script) listens to the search box only once loaded
    with page.expect_response(lambda r: "/console/devices" in r.url and "q=" in r.url):
        page.fill("input[name=q]", device_id)
    return page.locator("#devices-table a", has_text=device_id)
