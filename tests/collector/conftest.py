"""Collector fixtures: registered devices, an in-process ingest edge, a device MQTT client, broker taps."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import orjson
import pika
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY

from collector import settings as collector_settings
from collector.app import Pipeline
from iothub import topology
from iothub.settings import Env
from tests.support import mqtt as test_mqtt
from tests.support import queues
from tests.support.poll import wait_for
from tests.support.procs import free_port


def now_iso() -> str:
    """The current UTC time as the protocol writes it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def telemetry(device_id: str, seq: int | None, n: int = 1, **extra) -> dict:
    """A protocol v2 telemetry envelope (v1 when seq is None)."""
    ts = now_iso()
    body = {"device_id": device_id, "ts": ts,
            "measurements": [{"ts": ts, "type": f"m{i}", "val": 20.5 + i, "unit": "C"} for i in range(n)]}
    if seq is not None:
        body.update({"v": 2, "msg_type": "telemetry", "seq": seq})
    return {**body, **extra}


def hello(device_id: str, seq: int, uptime_s: int, ts: str | None = None) -> dict:
    """A protocol v2 hello envelope."""
    return {"v": 2, "device_id": device_id, "msg_type": "hello", "seq": seq, "ts": ts or now_iso(),
            "fw_version": "1.2.3", "uptime_s": uptime_s, "broker_connections": 1, "buf_usage_pct": 0.0}


def sample(name: str, **labels) -> float:
    """Current value of a metric sample (0 when never touched)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(scope="session")
def device_type(db, run_id) -> str:
    """A device type for the collector tests."""
    name = f"sensor-{run_id}"
    with db.transaction() as cur:
        cur.execute("INSERT INTO device_types (name) VALUES (%s)", (name,))
    return name


@pytest.fixture
def make_device(db, device_type, uid):
    """Registers a device with a unique id; `token=` sets its HTTP ingest token."""
    counter = iter(range(1000))

    def make(token: str | None = None) -> str:
        device_id = f"dev-{uid}-{next(counter)}"
        token_hash = hashlib.sha256(token.encode()).hexdigest() if token else None
        with db.transaction() as cur:
            cur.execute("""INSERT INTO devices (device_id, name, device_type_id, ingest_token_hash)
                           SELECT %s, %s, id, %s FROM device_types WHERE name = %s""",
                        (device_id, device_id, token_hash, device_type))
        return device_id

    return make


def edge_settings(pg_dsn, amqp_url, mqtt_port, *, client_id, prefix, **overrides):
    """Collector settings for an in-process edge on the run's servers."""
    env = {"IOTHUB_ENV": "development", "DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url, "MQTT_PORT": str(mqtt_port),
           **test_mqtt.env(), "MQTT_CLIENT_ID": client_id, "MQTT_TOPIC_PREFIX": prefix, "HTTP_PORT": str(free_port()),
           "SEQUENCER_REBALANCE_INTERVAL": "0.5", "WRITERS": "none", **overrides}
    return collector_settings.load(Env(env))


def wipe_session(port: int, client_id: str) -> None:
    """Discard a persistent MQTT session so the broker stops queueing for it."""
    client = test_mqtt.client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                              account=test_mqtt.BRIDGE)
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_for(client.is_connected, timeout=10, what="session wipe connect")
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def start_edge(db, pg_dsn, amqp_url, mqtt_broker, uid, tls_files):
    """Starts in-process ingest edges (stopped and their sessions wiped at teardown)."""
    started: list[Pipeline] = []

    def start(client_id: str | None = None, **overrides) -> Pipeline:
        settings = edge_settings(pg_dsn, amqp_url, mqtt_broker.port, client_id=client_id or f"collector-{uid}",
                                 prefix=f"t{uid}/", **{**tls_files.server_env(), **overrides})
        edge = Pipeline(settings, db).start()
        started.append(edge)
        assert edge.bridge.wait_connected(15), "bridge did not connect"
        return edge

    yield start
    for edge in started:
        edge.stop()
    for client_id in {e.settings.mqtt_client_id for e in started}:
        wipe_session(mqtt_broker.port, client_id)


@pytest.fixture
def edge(start_edge) -> Pipeline:
    """One running ingest edge with a per-test topic prefix."""
    return start_edge()


class Device:
    """A device's MQTT client publishing QoS 1 under the test's topic prefix."""

    def __init__(self, port: int, prefix: str):
        self.prefix = prefix
        self.client = test_mqtt.client(CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4().hex[:10]}")
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, device_id: str, body: dict | bytes, suffix: str = "telemetry", *, topic: str | None = None):
        """Publish and wait for the broker's PUBACK."""
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        info = self.client.publish(topic or f"{self.prefix}iot/{device_id}/{suffix}", payload, qos=1)
        info.wait_for_publish(10)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def device(mqtt_broker, uid):
    """A device client for the test's topic prefix."""
    dev = Device(mqtt_broker.port, f"t{uid}/")
    yield dev
    dev.close()


class Tap:
    """A temporary queue bound to an exchange; `drain()` collects (properties, body) pairs."""

    def __init__(self, amqp_url: str, exchange: str, keys: list[str]):
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        topology.declare(self.channel)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        # Bundles travel under a type-level key: take them all and keep the parts our keys select.
        for key in [*keys, f"*.*.{topology.BUNDLE_WORD}.*"]:
            self.channel.queue_bind(self.queue, exchange, routing_key=key)
        self.keys = keys
        self.received: list[tuple[pika.BasicProperties, bytes]] = []

    def drain(self) -> list[tuple[pika.BasicProperties, bytes]]:
        """Fetch what has arrived so far, bundles split into the parts our keys select."""
        while True:
            method, props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.received
            self.received += queues.split(props, body, self.keys)

    def count(self) -> int:
        """Messages received so far."""
        return len(self.drain())

    def bodies(self) -> list[dict]:
        """Decoded bodies of everything received."""
        return [orjson.loads(body) for _, body in self.drain()]

    def close(self) -> None:
        """Drop the queue."""
        if self.conn.is_open:
            self.conn.close()


@pytest.fixture
def tap(amqp_url):
    """Factory of taps: tap(exchange, [keys])."""
    taps: list[Tap] = []

    def make(exchange: str, keys: list[str]) -> Tap:
        t = Tap(amqp_url, exchange, keys)
        taps.append(t)
        return t

    yield make
    for t in taps:
        t.close()


# --- writer fixtures (collector writers) -------------------------------------------------------

class WriterKit:
    """What the writer tests need: settings, writer threads, IngestMessages, devices, queue tools."""

    def __init__(self, db, pg_dsn, amqp_url, archive_dir, uid):
        from iothub.rabbit import ConfirmPublisher

        self.db, self.uid, self._amqp_url = db, uid, amqp_url
        self._env = {"IOTHUB_ENV": "development", "DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url,
                     "HTTP_INGEST_ENABLED": "false", "ARCHIVE_DIR": str(archive_dir), "WRITER_BATCH_SIZE": "100",
                     "WRITER_BATCH_WAIT": "0.05"}
        self.publisher = ConfirmPublisher(amqp_url, name="writer-tests").start()
        self.handles: list = []
        self._seq = iter(range(1, 1_000_000))

    def settings(self, **env):
        """Collector Settings; keyword overrides are environment variables."""
        return collector_settings.load(Env({**self._env, **{k: str(v) for k, v in env.items()}}))

    def start(self, name, settings):
        """Start one writer thread and wait until it consumes."""
        from collector.writers import start_writer

        handle = start_writer(name, settings, self.db)
        self.handles.append(handle)
        wait_for(handle.ready, timeout=15, what=f"writer {name} connected")
        return handle

    def message(self, device_id, msg_type, body=None, *, ts, seq=None, epoch=1, device_type="power_meter_dc",
                received_at=None):
        """An IngestMessage as the ingest edge publishes it (deterministic msg_id from device/epoch/seq)."""
        from iothub.contract.ingest import IngestMessage, message_id

        seq = next(self._seq) if seq is None else seq
        stamp = ts.isoformat()
        envelope = {"v": 2, "device_id": device_id, "msg_type": msg_type, "ts": stamp, "seq": seq, **(body or {})}
        if msg_type == "status":
            envelope = {"device_id": device_id, "ts": stamp, **(body or {})}
        return IngestMessage(message_id(device_id, epoch, seq), device_id, device_type, msg_type, stamp, seq, epoch,
                             (received_at or datetime.now(UTC)).isoformat(), "mqtt", envelope)

    def send(self, *messages):
        """Publish IngestMessages to the telemetry exchange and wait for the confirms."""
        for msg in messages:
            key = topology.telemetry_key(msg.msg_type, msg.device_type, msg.device_id,
                                         topology.partition_of(msg.device_id, topology.DEFAULT_PARTITIONS))
            assert self.publisher.publish_wait(topology.TELEMETRY_EXCHANGE, key, msg.encode(),
                                               message_id=msg.msg_id), "publish not confirmed"

    def raw(self, exchange, key, body, **kwargs):
        """Publish arbitrary bytes with confirms."""
        assert self.publisher.publish_wait(exchange, key, body, **kwargs), "publish not confirmed"

    def _with_channel(self, fn):
        conn = pika.BlockingConnection(pika.URLParameters(self._amqp_url))
        try:
            channel = conn.channel()
            topology.declare(channel)
            return fn(channel)
        finally:
            conn.close()

    def purge(self, *queues):
        """Empty shared queues before a test."""
        self._with_channel(lambda ch: [ch.queue_purge(q) for q in queues])

    def ready_count(self, queue):
        """Messages ready (not held by a consumer) in a queue."""
        return self._with_channel(lambda ch: ch.queue_declare(queue, passive=True).method.message_count)

    def device(self, device_id):
        """Register a device of the reference type power_meter_dc; returns its row id."""
        with self.db.transaction() as cur:
            cur.execute("""INSERT INTO devices (device_id, name, device_type_id)
                           SELECT %s, %s, id FROM device_types WHERE name = 'power_meter_dc' RETURNING id""",
                        (device_id, device_id))
            return cur.fetchone()[0]

    def close(self):
        """Stop the writers and the publisher."""
        for handle in self.handles:
            handle.stop()
        for handle in self.handles:
            handle.join(15)
        self.publisher.stop()


@pytest.fixture
def writer_kit(db, pg_dsn, amqp_url, tmp_path, uid):
    """A WriterKit for one test; its writers stop at teardown."""
    kit = WriterKit(db, pg_dsn, amqp_url, tmp_path / "archive", uid)
    yield kit
    kit.close()
