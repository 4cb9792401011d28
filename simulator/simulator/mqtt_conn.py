"""One paho client to one broker, and a broker's set of them (a shared pool, or one per device)."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iothub.mqtt_tls import MqttAuth
from simulator.config import Broker
from simulator.profile import PROFILES
from simulator.settings import Settings

log = logging.getLogger(__name__)
QUEUED = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # paho keeps QoS 1/2 messages for the reconnect


class Conn:
    """One paho client, its connection state and the last message it was asked to deliver."""

    def __init__(self, s: Settings, broker: Broker, client_id: str, inbox: queue.Queue, *, subscribe: str | None,
                 will: tuple[str, bytes, bool], online: tuple[str, bytes] | None, auth: MqttAuth | None = None):
        profile = PROFILES[s.profile]
        self.broker = broker
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.acked = 0
        self.last: mqtt.MQTTMessageInfo | None = None
        self._inbox, self._subscribe, self._online = inbox, subscribe or None, online
        self._status_qos, self._command_qos, self._keepalive = profile.qos["status"], profile.command_qos, s.keepalive
        self._prefix_len = len(s.topic_prefix) + len("iot/")
        if profile.session_expiry_s:
            # The spec's persistent session with an expiry exists only in MQTT 5 (3.1.1 sessions live forever).
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = profile.session_expiry_s
            self._connect_kw: dict = {"clean_start": False, "properties": props}
        else:
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
            self._connect_kw = {}
        (auth or s.mqtt_auth).apply(c)
        c.will_set(will[0], will[1], qos=self._status_qos, retain=will[2])
        c.max_inflight_messages_set(s.max_inflight)
        c.reconnect_delay_set(0.2, 10)
        c.on_connect, c.on_disconnect, c.on_subscribe = self._connected, self._disconnected, self._suback
        c.on_message, c.on_publish = self._message, self._published
        self.client = c

    @property
    def ready(self) -> threading.Event:
        """Set once this connection can do its job: subscribed when it receives commands, else connected."""
        return self.subscribed if self._subscribe is not None else self.connected

    def start(self) -> None:
        """Connect in the background; paho reconnects on its own afterwards."""
        self.client.connect_async(self.broker[0], self.broker[1], keepalive=self._keepalive, **self._connect_kw)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes, qos: int, retain: bool, errors: Counter) -> bool:
        """Queue one message; False (and a counted error) when paho refused it."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in QUEUED:
            errors[mqtt.error_string(info.rc)] += 1
            return False
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            errors["queued_while_disconnected"] += 1
        self.last = info
        return True

    def _connected(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused", extra={"reason": str(reason), "broker": broker_name(self.broker)})
            return
        self.connected.set()
        if self._online:  # on every (re)connect, so the retained status never stays "offline" while we live
            client.publish(self._online[0], self._online[1], qos=self._status_qos, retain=True)
        if self._subscribe:
            client.subscribe(self._subscribe, qos=self._command_qos)

    def _disconnected(self, client, userdata, flags, reason, properties) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if reason.is_failure:
            log.warning("mqtt connection lost", extra={"reason": str(reason), "broker": broker_name(self.broker)})

    def _suback(self, client, userdata, mid, reasons, properties) -> None:
        self.subscribed.set()

    def _message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        device_id = msg.topic[self._prefix_len:].split("/", 1)[0]
        self._inbox.put((device_id, msg.payload, self.broker))

    def _published(self, client, userdata, mid, reason, properties) -> None:
        self.acked += 1

    def stop(self, timeout: float) -> None:
        """Wait for the last publish to be acknowledged, then disconnect cleanly."""
        if self.last is not None and self.connected.is_set():
            with contextlib.suppress(RuntimeError, ValueError):  # not sent before the connection went
                self.last.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()


class Group:
    """The connections to one broker: a pool shared by all devices (device i on i mod n), or one per device."""

    def __init__(self, pool: list[Conn] | None = None):
        self.pool = pool or []
        self.own: dict[int, Conn] = {}  # per-device mode: device index -> its connection

    def conn_for(self, index: int) -> Conn:
        """The connection device `index` publishes on."""
        return self.pool[index % len(self.pool)] if self.pool else self.own[index]

    @property
    def conns(self) -> list[Conn]:
        """Every connection of the group."""
        return self.pool or list(self.own.values())

    def wait(self, deadline: float) -> bool:
        """Wait until every connection is ready or the monotonic deadline passes; True when all are."""
        return all(c.ready.wait(max(0.0, deadline - time.monotonic())) for c in self.conns)


def broker_name(broker: Broker) -> str:
    """host:port."""
    return f"{broker[0]}:{broker[1]}"


def retire(conns: list[Conn], timeout: float = 5.0) -> None:
    """Disconnect connections no device needs any more, off the fleet's thread (each waits for its last ack)."""
    for c in conns:
        threading.Thread(target=c.stop, args=(timeout,), daemon=True, name=f"retire-{broker_name(c.broker)}").start()
