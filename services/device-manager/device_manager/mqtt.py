"""Command publisher: one long-lived paho client per app, QoS 2 (or 1), the QoS handshake awaited with a timeout."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_manager import metrics
from device_manager.service.commands import Outgoing
from iothub.contract.commands import encode_command
from iothub.contract.topics import command_topic
from iothub.mqtt_tls import MqttAuth

log = logging.getLogger("device_manager.mqtt")


class CommandPublisher:
    """Connects lazily (after a gunicorn fork) and reconnects by itself through paho's loop thread."""

    def __init__(self, host: str, port: int, *, client_id: str, auth: MqttAuth | None = None,
                 topic_prefix: str = "", keepalive: int = 30, timeout: float = 5.0,
                 qos: int = 2):
        self.host, self.port, self.keepalive, self.timeout, self.qos = host, port, keepalive, timeout, qos
        self.topic_prefix = topic_prefix
        self._client_id = f"{client_id}-{uuid.uuid4().hex[:8]}"  # gunicorn workers must not share an id
        self._auth = auth or MqttAuth()
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._connected = threading.Event()

    def _ensure(self) -> mqtt.Client:
        with self._lock:
            if self._client is None:
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self._client_id, clean_session=True)
                self._auth.apply(client)
                client.on_connect = self._on_connect
                client.on_disconnect = self._on_disconnect
                client.reconnect_delay_set(1, 10)
                client.connect_async(self.host, self.port, keepalive=self.keepalive)
                client.loop_start()
                self._client = client
            return self._client

    def _on_connect(self, _client, _userdata, _flags, reason_code, _props):
        if not reason_code.is_failure:
            self._connected.set()
        log.info("mqtt connected", extra={"reason": str(reason_code)})

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props):
        self._connected.clear()
        log.warning("mqtt disconnected", extra={"reason": str(reason_code)})

    def is_connected(self) -> bool:
        """True when the broker connection is up (starts it on first call)."""
        self._ensure()
        return self._connected.is_set()

    def publish_many(self, commands: Iterable[Outgoing]) -> set[str]:
        """Publish every command at the configured QoS; the cmd_ids whose handshake completed within the timeout."""
        client = self._ensure()
        deadline = time.monotonic() + self.timeout
        self._connected.wait(max(0.0, deadline - time.monotonic()))
        pending = []
        for c in commands:
            topic = command_topic(c.device_id, self.topic_prefix)
            payload = encode_command(c.cmd_id, c.cmd, c.params, c.ts, exp=c.exp, sig=c.sig)
            pending.append((c.cmd_id, client.publish(topic, payload, qos=self.qos)))
        acked = set()
        # paho marks a message published on PUBCOMP at QoS 2 (the broker has taken it over), on PUBACK at QoS 1.
        for cmd_id, info in pending:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):  # not connected or queue full: stays pending, expires later
                continue
            if info.is_published():
                acked.add(cmd_id)
        metrics.COMMANDS_PUBLISHED.labels("acked").inc(len(acked))
        metrics.COMMANDS_PUBLISHED.labels("timeout").inc(len(pending) - len(acked))
        return acked

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
