"""An MQTT 5 client that records what the broker answered: CONNACK, SUBACK and PUBACK reason codes, disconnects."""

from __future__ import annotations

import ssl
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iothub.mqtt_tls import MqttAuth
from tests.support.poll import wait_for


class Probe:
    """Connects over TLS with the given auth; every broker answer is kept for the test to assert on."""

    def __init__(self, port: int, auth: MqttAuth, *, client_id: str | None = None):
        self.port, self.auth = port, auth
        self.connack: mqtt.ReasonCode | None = None
        self.disconnects: list[mqtt.ReasonCode] = []
        self.subacks: dict[int, list] = {}
        self.pubacks: dict[int, mqtt.ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.tls_error: Exception | None = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        auth.apply(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda _c, _u, _f, rc, _p: self.disconnects.append(rc)
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self.subacks.__setitem__(mid, rcs)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc)
        self.client.on_message = self._on_message

    def _on_connect(self, _c, _u, _flags, reason, _props) -> None:
        self.connack = reason

    def _on_message(self, _c, _u, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def connect(self) -> Probe:
        """Connect and wait for the CONNACK (or a TLS failure, kept in tls_error)."""
        try:
            self.client.connect("127.0.0.1", self.port)
        except (ssl.SSLError, OSError) as exc:
            self.tls_error = exc
            return self
        self.client.loop_start()
        wait_for(lambda: self.connack is not None or self.disconnects, timeout=10, what="CONNACK")
        return self

    @property
    def accepted(self) -> bool:
        """The broker accepted the connection."""
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> list:
        """Subscribe at QoS 1 and return the SUBACK's reason codes."""
        _, mid = self.client.subscribe(topic, qos=1)
        return wait_for(lambda: self.subacks.get(mid), timeout=10, what=f"SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes = b"{}") -> mqtt.ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.pubacks, timeout=10, what=f"PUBACK for {topic}")
        return self.pubacks[info.mid]

    def received(self, topic: str) -> list[bytes]:
        """Payloads received on a topic so far."""
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
