"""Simulator fixtures: settings without the environment, an in-memory sink, a real MQTT subscriber and fleet."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import pytest

from iothub.contract import parse
from iothub.contract.topics import parse_device_topic
from iothub.settings import Env
from simulator import settings as sim_settings
from simulator.fleet import Fleet
from simulator.mqtt import MqttSink
from tests.support.poll import wait_for


def make_settings(*flags: str, **env: str):
    """Settings from flags over an explicit environment (never the process's)."""
    return sim_settings.load(["--metrics-port", "0", *flags], Env(env))


@dataclass
class ListSink:
    """The fleet's publishing port, recording in memory (pure-logic tests only)."""

    owns_status: bool = False
    sent: list[tuple[int, str, bytes, bool]] = field(default_factory=list)

    def publish(self, index: int, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Record the message."""
        self.sent.append((index, topic, payload, retain))
        return True

    def bodies(self, suffix: str | None = None) -> list[bytes]:
        """Payloads, optionally only those on topics ending with suffix."""
        return [p for _, t, p, _ in self.sent if suffix is None or t.endswith(suffix)]


class Subscriber:
    """A real MQTT client collecting every message on the given filters."""

    def __init__(self, port: int, *filters: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f, 1) for f in filters])
        self.client.loop_start()
        wait_for(self._ready.is_set, timeout=10, what="subscription")

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

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

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the broker's ack."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


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
