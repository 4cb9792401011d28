"""MQTT adapter: a shared pool of paho clients, or one client (and one real Last Will) per device."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections import Counter

import orjson
import paho.mqtt.client as mqtt

from iothub.contract.topics import command_topic, device_topic
from simulator.device import iso
from simulator.settings import Settings

log = logging.getLogger(__name__)
QUEUED = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # paho keeps QoS 1 messages for the reconnect


class _Conn:
    """One paho client, its connection state and the last message it was asked to deliver."""

    def __init__(self, s: Settings, client_id: str, inbox: queue.Queue, *, subscribe: str | None,
                 will: tuple[str, bytes, bool], online: tuple[str, bytes] | None):
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.acked = 0
        self.last: mqtt.MQTTMessageInfo | None = None
        self._inbox, self._subscribe, self._online = inbox, subscribe or None, online
        self._prefix_len = len(s.topic_prefix) + len("iot/")
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if s.mqtt_username:
            c.username_pw_set(s.mqtt_username, s.mqtt_password)
        c.will_set(will[0], will[1], qos=1, retain=will[2])
        c.max_inflight_messages_set(s.max_inflight)
        c.reconnect_delay_set(0.2, 10)
        c.on_connect, c.on_disconnect, c.on_subscribe = self._connected, self._disconnected, self._suback
        c.on_message, c.on_publish = self._message, self._published
        self.client = c

    @property
    def subscribes(self) -> bool:
        """Whether this connection receives commands."""
        return self._subscribe is not None

    def start(self, s: Settings) -> None:
        """Connect in the background; paho reconnects on its own afterwards."""
        self.client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.keepalive)
        self.client.loop_start()

    def _connected(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused", extra={"reason": str(reason)})
            return
        self.connected.set()
        if self._online:  # on every (re)connect, so the retained status never stays "offline" while we live
            client.publish(self._online[0], self._online[1], qos=1, retain=True)
        if self._subscribe:
            client.subscribe(self._subscribe, qos=1)

    def _disconnected(self, client, userdata, flags, reason, properties) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if reason.is_failure:
            log.warning("mqtt connection lost", extra={"reason": str(reason)})

    def _suback(self, client, userdata, mid, reasons, properties) -> None:
        self.subscribed.set()

    def _message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        device_id = msg.topic[self._prefix_len:].split("/", 1)[0]
        self._inbox.put((device_id, msg.payload))

    def _published(self, client, userdata, mid, reason, properties) -> None:
        self.acked += 1

    def stop(self, timeout: float) -> None:
        """Wait for the last publish to be acknowledged, then disconnect cleanly."""
        if self.last is not None and self.connected.is_set():
            with contextlib.suppress(RuntimeError, ValueError):  # not sent before the connection went
                self.last.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()


class MqttSink:
    """The fleet's publishing port over real MQTT connections (QoS 1)."""

    def __init__(self, s: Settings, device_ids: list[str], inbox: queue.Queue):
        self.errors: Counter[str] = Counter()
        self.owns_status = s.connection_mode == "per-device"
        run = uuid.uuid4().hex[:6]
        if self.owns_status:
            self.conns = [self._device_conn(s, d, inbox) for d in device_ids]
        else:
            n = max(1, min(s.pool_size, len(device_ids)))
            wildcard = f"{s.topic_prefix}iot/+/command"
            self.conns = []
            for i in range(n):
                cid = f"{s.id_prefix}-pool-{s.start_index}-{i}-{run}"
                # A pool connection's Last Will can only speak for the connection, not for its devices.
                will = (f"{s.topic_prefix}simulator/{cid}/status", b'{"status":"offline"}', False)
                # Only the first connection subscribes: any connection may receive a command, acks go out on
                # the device's own connection.
                sub = wildcard if i == 0 else None
                self.conns.append(_Conn(s, cid, inbox, subscribe=sub, will=will, online=None))
        self._n = len(self.conns)

    @staticmethod
    def _device_conn(s: Settings, device_id: str, inbox: queue.Queue) -> _Conn:
        now = iso(time.time())
        status = device_topic(device_id, "status", s.topic_prefix)
        will = orjson.dumps({"v": 2, "device_id": device_id, "status": "offline", "ts": now})
        online = orjson.dumps({"v": 2, "device_id": device_id, "status": "online", "ts": now})
        return _Conn(s, device_id, inbox, subscribe=command_topic(device_id, s.topic_prefix),
                     will=(status, will, True), online=(status, online))

    def start(self, s: Settings, timeout: float = 30.0) -> None:
        """Connect everything and wait until the command subscriptions are in place."""
        for c in self.conns:
            c.start(s)
        deadline = time.monotonic() + timeout
        for c in self.conns:
            ready = c.subscribed if c.subscribes else c.connected
            if not ready.wait(max(0.0, deadline - time.monotonic())):
                raise ConnectionError(f"MQTT broker {s.mqtt_host}:{s.mqtt_port} not ready after {timeout:.0f}s")

    def publish(self, index: int, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Queue a QoS 1 message on the device's connection."""
        conn = self.conns[index % self._n]
        info = conn.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in QUEUED:
            self.errors[mqtt.error_string(info.rc)] += 1
            return False
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            self.errors["queued_while_disconnected"] += 1
        conn.last = info
        return True

    @property
    def acked(self) -> int:
        """Messages the broker acknowledged (PUBACK)."""
        return sum(c.acked for c in self.conns)

    def connected(self) -> bool:
        """Readiness: every connection is up."""
        return all(c.connected.is_set() for c in self.conns)

    def close(self, timeout: float = 10.0) -> None:
        """Flush and disconnect every connection."""
        for c in self.conns:
            c.stop(timeout)
