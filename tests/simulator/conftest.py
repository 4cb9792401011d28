"""Simulator fixtures: settings without the environment, an in-memory sink, a real MQTT subscriber and fleet."""

from __future__ import annotations

import queue
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import paho.mqtt.client as mqtt
import pytest

from iothub.contract import InvalidMessage, parse
from iothub.contract.signing import signature, stamp
from iothub.contract.topics import parse_device_topic
from iothub.mqtt_tls import MqttAuth
from iothub.settings import Env
from simulator import settings as sim_settings
from simulator.fleet import Fleet
from simulator.keys import device_key
from simulator.mqtt import MqttSink
from tests.support import mqtt as test_mqtt
from tests.support import procs
from tests.support.poll import wait_for

WHOLE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")  # the spec's "2026-02-12T10:00:10Z"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SPEC_OTA = {"fw_version": "2.2.0", "fw_url": "https://ota.example.com/2.2.0.bin", "fw_sha256": SHA,
            "fw_size_bytes": 524288}  # start_ota params with the firmware spec's names
A, B, C = ("127.0.0.1", 1883), ("127.0.0.1", 1884), ("127.0.0.1", 1885)
SEED = "tests-simulator-command-key-seed"  # every test fleet derives its devices' command keys from it
KEK = "22" * 32  # and provisioning stores them under this key-encryption key


def brokers(*ports: int) -> list[dict]:
    """update_config's broker list for local ports."""
    return [{"host": "127.0.0.1", "port": p} for p in ports]


def make_settings(*flags: str, **env: str):
    """Settings from flags over an explicit environment (never the process's): the test seed, and OTA steps without
    downloads (the tests of real downloads and signature refusals say so explicitly)."""
    return sim_settings.load(["--metrics-port", "0", *flags],
                             Env({"IOTHUB_ENV": "development", **test_mqtt.env(test_mqtt.FLEET),
                                  "SIM_COMMAND_KEY_SEED": SEED, "COMMAND_KEY_KEK": KEK, "SIM_OTA_DOWNLOAD": "false",
                                  **env}))


def signed(device_id: str, cmd_id: str, cmd: str, params: dict, *, ttl_s: int = 300, seed: str = SEED) -> bytes:
    """A command as the device manager sends it: issued now, expiring in ttl_s, signed with the device's key."""
    now = datetime.now(UTC)
    body = {"cmd_id": cmd_id, "ts": stamp(now), "exp": stamp(now + timedelta(seconds=ttl_s)), "cmd": cmd,
            "params": params}
    body["sig"] = signature(device_key(seed.encode(), device_id), device_id, body)
    return orjson.dumps({"v": 2, **body})


@dataclass
class ListSink:
    """The fleet's publishing port, recording in memory (pure-logic tests only)."""

    owns_status: bool = False
    sent: list[tuple[int, str, bytes, bool]] = field(default_factory=list)
    qos: list[int] = field(default_factory=list)  # QoS of each item of `sent`
    routes: dict[int, tuple] = field(default_factory=dict)  # device index -> brokers set by set_brokers
    connections: int = 1  # what connected_brokers answers

    def publish(self, index: int, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> bool:
        """Record the message."""
        self.sent.append((index, topic, payload, retain))
        self.qos.append(qos)
        return True

    def connected_brokers(self, index: int) -> int:
        """A fixed number."""
        return self.connections

    def set_brokers(self, index: int, brokers: tuple, offline: tuple[str, bytes]) -> None:
        """Record the new broker set and the goodbye."""
        self.routes[index] = brokers
        self.publish(index, offline[0], offline[1], True)

    def bodies(self, suffix: str | None = None) -> list[bytes]:
        """Payloads, optionally only those on topics ending with suffix."""
        return [p for _, t, p, _ in self.sent if suffix is None or t.endswith(suffix)]


class Subscriber:
    """A real MQTT client collecting every message on the given filters (subscribed at `qos`)."""

    def __init__(self, port: int, *filters: str, qos: int = 1, auth: MqttAuth | None = None):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.qos: list[int] = []  # the QoS each of `messages` was delivered at
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, clean_session=True)
        (auth or test_mqtt.auth()).apply(self.client)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f, qos) for f in filters])
        self.client.loop_start()
        wait_for(self._ready.is_set, timeout=10, what="subscription")

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))
            self.qos.append(msg.qos)

    def envelopes(self, device_id: str | None = None, msg_type: str | None = None) -> list:
        """Received device messages parsed with the contract (raises on an invalid one)."""
        with self._lock:
            items = list(self.messages)
        out = []
        for topic, payload, _ in items:
            dev, expected = parse_device_topic(topic) or (None, None)
            if dev is None or (device_id and dev != device_id) or (msg_type and expected != msg_type):
                continue
            out.append(parse(payload, expected_type=expected, topic_device_id=dev))
        return out

    def received(self, suffix: str = "") -> list[tuple[str, bytes, int]]:
        """(topic, payload, QoS) of the messages on topics ending with suffix."""
        with self._lock:
            return [(t, p, q) for (t, p, _), q in zip(self.messages, self.qos, strict=True) if t.endswith(suffix)]

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish and wait for the broker's ack."""
        self.client.publish(topic, payload, qos=qos).wait_for_publish(10)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def fleet_of(*flags: str) -> tuple[Fleet, ListSink]:
    """A seeded fleet over a ListSink, started at monotonic 0."""
    sink = ListSink()
    fleet = Fleet(make_settings("--seed", "7", *flags), sink)
    fleet.start(0.0)
    return fleet, sink


def run_ticks(fleet: Fleet, seconds: float, start: float = 0.0, step: float = 0.1) -> float:
    """Advance the fleet's monotonic clock in steps; returns the new time."""
    t = start
    while t < start + seconds:
        t += step
        fleet.step(t)
    return t


def sequenced(sink: ListSink, device_id: str) -> list:
    """Valid sequenced envelopes of one device, in publish order (invalid ones skipped)."""
    out = []
    for _, topic, payload, _ in sink.sent:
        dev, expected = parse_device_topic(topic)
        if dev != device_id:
            continue
        try:
            env = parse(payload, expected_type=expected, topic_device_id=dev)
        except InvalidMessage:
            continue
        if env.is_sequenced:
            out.append(env)
    return out


def command(fleet: Fleet, device_id: str, cmd: str, params: dict, now: float, broker=None) -> str:
    """Hand the fleet one command (as if from `broker`); returns its cmd_id."""
    cmd_id = str(uuid.uuid4())
    fleet.handle_command(device_id, signed(device_id, cmd_id, cmd, params), now, broker)
    return cmd_id


@pytest.fixture
def second_broker(tmp_path_factory):
    """Another Mosquitto with the project's config, on its own port and data directory (a device's second broker)."""
    server = procs.mosquitto(tmp_path_factory.mktemp("mosquitto-b")).start()
    yield server
    server.stop()


@pytest.fixture
def subscriber(mqtt_broker) -> Iterator[Subscriber]:
    """Subscribed to every device topic of the broker."""
    sub = Subscriber(mqtt_broker.port, "iot/#")
    yield sub
    sub.close()


@dataclass
class Running:
    """A fleet driven on a thread over real MQTT."""

    fleet: Fleet
    sink: MqttSink
    stop: threading.Event
    thread: threading.Thread


@pytest.fixture
def run_fleet(mqtt_broker) -> Iterator:
    """Start a fleet over the mqtt_broker fixture: run_fleet(*flags) -> Running; stopped at teardown."""
    started: list[Running] = []

    def start(*flags: str) -> Running:
        s = make_settings("--mqtt-port", str(mqtt_broker.port), *flags)
        inbox: queue.Queue = queue.Queue()
        sink = MqttSink(s, [s.device_id(s.start_index + i) for i in range(s.devices)], inbox)
        fleet = Fleet(s, sink, inbox=inbox)
        sink.start(s, timeout=10)
        stop = threading.Event()
        thread = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
        thread.start()
        started.append(Running(fleet, sink, stop, thread))
        return started[-1]

    yield start
    for r in started:
        r.stop.set()
        r.thread.join(10)
        r.sink.close()
