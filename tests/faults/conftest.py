"""A private stack per fault test: own Mosquitto, PostgreSQL behind a cuttable proxy, real services."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import pytest

from tests.faults.ledger import LedgerPublisher
from tests.support import mqtt as test_mqtt
from tests.support import procs
from tests.support.queues import purge_all
from tests.support.services import STAGES, ServiceProcess, running_platform, service
from tests.support.tcpproxy import TcpProxy
from tests.support.webhook import WebhookReceiver


@dataclass
class FaultStack:
    """Everything a fault scenario touches."""

    mqtt: procs.Server
    pg_proxy: TcpProxy
    s3: procs.Server
    services: dict[str, ServiceProcess]
    webhook: WebhookReceiver
    env: dict[str, str]
    metric: str
    rule_id: str = ""
    devices: list[str] = field(default_factory=list)
    secret: str = "fault-secret"

    def publish_stream(self, per_device: int, fault, *, rate: float = 400.0) -> set[tuple[str, int]]:
        """Publish seq 0..per_device-1 for every device, inject `fault` halfway, return what the broker acked."""
        publisher = LedgerPublisher(self.mqtt.port, f"ledger-{self.metric}")
        breach = per_device // 2
        injected = threading.Event()
        try:
            interval = 1.0 / rate
            for seq in range(per_device):
                if seq == per_device // 2 and not injected.is_set():
                    threading.Thread(target=lambda: (fault(self), injected.set()), daemon=True).start()
                for device_id in self.devices:
                    publisher.publish_telemetry(device_id, seq, 1000.0 if seq == breach else 500.0, self.metric)
                    time.sleep(interval)  # pacing the stream, not synchronisation
            from tests.support.poll import wait_for

            wait_for(injected.is_set, timeout=120, what="fault injected and healed")
            wait_for(lambda: publisher.pending() == 0, timeout=120, what="all publishes PUBACKed")
            return set(publisher.acked)
        finally:
            publisher.close()


# The staged platform, scaled out: two bridges on one shared subscription, two sequencer replicas, one process
# per writer. Each entry: process name -> (service or stage name, environment on top of the stack's).
def staged_platform(uid: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Process specs of the scaled-out platform."""
    share = {"MQTT_SHARE_GROUP": f"g{uid}"}
    specs = {
        "edge-a": ("collector-edge", {**share, "MQTT_CLIENT_ID": f"edge-{uid}-a"}),
        "edge-b": ("collector-edge", {**share, "MQTT_CLIENT_ID": f"edge-{uid}-b"}),
        "sequencer-a": ("collector-sequencer", {"SEQUENCER_REBALANCE_INTERVAL": "1"}),
        "sequencer-b": ("collector-sequencer", {"SEQUENCER_REBALANCE_INTERVAL": "1"}),
    }
    specs.update({name: (name, {}) for name in STAGES if name not in ("collector-edge", "collector-sequencer")})
    specs.update({name: (name, {}) for name in ("rule-engine", "notifier")})
    return specs


@contextlib.contextmanager
def running_staged(env: dict[str, str], logdir, uid: str, started: dict[str, ServiceProcess]):
    """Start the scaled-out platform into `started`; stop whatever started on exit."""
    try:
        for name, (kind, extra) in staged_platform(uid).items():
            proc = service(kind, {**env, **extra}, logdir)
            proc.name = name
            started[name] = proc.start(timeout=60)
        yield started
    finally:
        for proc in started.values():
            with contextlib.suppress(Exception):
                proc.stop()


@pytest.fixture(params=["one_process", "staged"])
def platform_shape(request) -> str:
    """Which shape of the platform a fault stack runs: the collector in one process, or scaled-out stages."""
    return request.param


@pytest.fixture
def fault_stack(tmp_path, pg_dsn, amqp_url, s3_server, db, uid, webhook, request):
    """Start a private Mosquitto, the PostgreSQL proxy and the services, with a rule and a webhook; a test that
    asks for `platform_shape` runs on both shapes."""
    staged = "platform_shape" in request.fixturenames and request.getfixturevalue("platform_shape") == "staged"
    purge_all(amqp_url)
    mqtt_dir = tmp_path / "mqtt"
    mqtt_dir.mkdir()
    mqtt = procs.mosquitto(mqtt_dir).start()
    proxy = TcpProxy(5432)
    dbname = pg_dsn.rsplit("/", 1)[1]
    metric = f"fault_{uid}"
    env = {
        "IOTHUB_ENV": "development", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{proxy.port}/{dbname}",
        "AMQP_URL": amqp_url, "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(mqtt.port), **test_mqtt.env(),
        "MQTT_CLIENT_ID": f"collector-{uid}", "HTTP_INGEST_ENABLED": "false", "SERIES_BACKENDS": "postgres",
        "ARCHIVE_BACKEND": "s3", "S3_ENDPOINT": f"127.0.0.1:{s3_server.port}", "S3_ACCESS_KEY": "test",
        "S3_SECRET_KEY": "testtest", "S3_BUCKET": f"faults-{uid}", "ARCHIVE_WINDOW_S": "60",
        "WRITER_BATCH_WAIT": "0.05", "RULES_MIN_RELOAD_S": "0.2", "NOTIFY_BACKOFF_BASE": "0.05",
        "NOTIFY_BACKOFF_CAP": "0.5", "NOTIFY_POLL_INTERVAL": "0.1", "WEBHOOK_TIMEOUT": "1",
        "NOTIFY_MAX_ATTEMPTS": "20", "RULE_REBALANCE_INTERVAL": "1",
    }
    devices = [f"flt-{uid}-{i}" for i in range(8)]
    with db.transaction() as cur:
        for device_id in devices:
            cur.execute("INSERT INTO devices (device_id, name, device_type_id) "
                        "SELECT %s, %s, id FROM device_types WHERE name = 'power_meter_dc'", (device_id, device_id))
        cur.execute("INSERT INTO rules (name, scope, metric, operator, threshold, severity) "
                    "VALUES (%s, 'all', %s, 'gt', 900, 'warning') RETURNING id", (f"rule-{uid}", metric))
        rule_id = str(cur.fetchone()[0])
        cur.execute("INSERT INTO subscriptions (name, channel, target, secret, min_severity, rule_id) "
                    "VALUES (%s, 'webhook', %s, 'fault-secret', 'info', %s)", (f"sub-{uid}", webhook.url, rule_id))
    services = {}
    stack = FaultStack(mqtt, proxy, s3_server, services, webhook, env, metric, rule_id, devices)
    try:
        with running_staged(env, tmp_path, uid, services) if staged else running_platform(env, tmp_path, services):
            yield stack
    finally:
        proxy.close()
        mqtt.stop()
