"""MQTT adapter: every device publishes to all of its brokers, over a shared pool or its own client per broker."""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import orjson

from iothub.contract.topics import command_topic, device_topic
from simulator.config import Broker
from simulator.device import status_body
from simulator.mqtt_conn import Conn, Group, broker_name, retire
from simulator.profile import PROFILES
from simulator.settings import Settings

log = logging.getLogger(__name__)


class MqttSink:
    """The fleet's publishing port over real MQTT connections (REQ-BROKER-001: each message to all brokers)."""

    def __init__(self, s: Settings, device_ids: list[str], inbox: queue.Queue):
        self.s, self._ids, self._inbox = s, device_ids, inbox
        self.profile = PROFILES[s.profile]
        self.errors: Counter[str] = Counter()
        self.owns_status = s.connection_mode == "per-device"
        self.groups: dict[Broker, Group] = {}
        self.routes: list[tuple[Broker, ...]] = [s.brokers] * len(device_ids)  # device index -> its brokers
        self._run = uuid.uuid4().hex[:6]
        self._made = 0  # groups created so far: names the pool clients of brokers after the first
        self._started = False
        self._retired: list[Conn] = []
        # Per-device connections log in as their device when provision issued it a password.
        self._passwords: dict[str, str] = orjson.loads(Path(s.credentials_file).read_bytes()) \
            if s.credentials_file else {}
        for broker in s.brokers:
            self._join(broker, range(len(device_ids)))

    # -- connections ---------------------------------------------------------------------------------------

    def _join(self, broker: Broker, indices: Iterable[int]) -> None:
        """Give devices a connection to `broker`, creating (and, once running, starting) what is missing."""
        group = self.groups.get(broker)
        fresh: list[Conn] = []
        if group is None:
            suffix = f"-b{self._made}" if self._made else ""  # the first broker keeps the historical client ids
            self._made += 1
            group = self.groups[broker] = Group(None if self.owns_status else self._pool(broker, suffix))
            fresh = list(group.pool)
        if self.owns_status:
            for i in indices:
                if i not in group.own:
                    group.own[i] = self._device_conn(broker, i)
                    fresh.append(group.own[i])
        if self._started:
            for c in fresh:
                c.start()

    def _pool(self, broker: Broker, suffix: str) -> list[Conn]:
        s = self.s
        wildcard = f"{s.topic_prefix}iot/+/command"
        conns = []
        for i in range(max(1, min(s.pool_size, len(self._ids)))):
            cid = f"{s.id_prefix}-pool-{s.start_index}-{i}-{self._run}{suffix}"
            # A pool connection's Last Will can only speak for the connection, not for its devices.
            will = (f"{s.topic_prefix}simulator/{cid}/status", b'{"status":"offline"}', False)
            # Only the first connection subscribes: any connection may receive a command, acks go out on
            # the device's own connection.
            conns.append(Conn(s, broker, cid, self._inbox, subscribe=wildcard if i == 0 else None, will=will,
                              online=None))
        return conns

    def _device_conn(self, broker: Broker, index: int) -> Conn:
        s, device_id = self.s, self._ids[index]
        now = self.profile.stamp(time.time())  # a will is fixed when connecting: its ts is the connection time
        status = device_topic(device_id, "status", s.topic_prefix)
        will = orjson.dumps(status_body(device_id, False, now))
        online = orjson.dumps(status_body(device_id, True, now))
        password = self._passwords.get(device_id)
        auth = replace(s.mqtt_auth, username=device_id, password=password) if password else None
        return Conn(s, broker, device_id, self._inbox, subscribe=command_topic(device_id, s.topic_prefix),
                    will=(status, will, True), online=(status, online), auth=auth)

    def set_brokers(self, index: int, brokers: tuple[Broker, ...], offline: tuple[str, bytes]) -> None:
        """Move one device to another broker set; each broker it leaves gets `offline` (topic, body) retained."""
        old = self.routes[index]
        for broker in brokers:
            if broker not in old:
                self._join(broker, (index,))
        self.routes[index] = brokers
        for broker in old:
            if broker in brokers:
                continue
            group = self.groups[broker]
            # A clean disconnect fires no Last Will: say goodbye, or the retained status stays "online" there.
            group.conn_for(index).send(*offline, self.profile.qos["status"], True, self.errors)
            if self.owns_status:
                self._retire([group.own.pop(index)])
            if not group.own and not any(broker in r for r in self.routes):
                self._retire(group.pool)
                del self.groups[broker]

    def _retire(self, conns: list[Conn]) -> None:
        self._retired.extend(conns)
        retire(conns)

    # -- the fleet's port ----------------------------------------------------------------------------------

    def start(self, s: Settings, timeout: float = 30.0) -> None:
        """Connect everything and wait until the command subscriptions are in place (on one broker at least)."""
        self._started = True
        for c in self.conns:
            c.start()
        deadline = time.monotonic() + timeout
        late = [b for b, g in self.groups.items() if not g.wait(deadline)]
        if len(late) == len(self.groups):
            raise ConnectionError(f"MQTT broker {', '.join(map(broker_name, late))} not ready after {timeout:.0f}s")
        for broker in late:  # paho keeps trying; messages for it queue until it is up
            log.warning("mqtt broker not ready, publishing to the others", extra={"broker": broker_name(broker)})

    def publish(self, index: int, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> bool:
        """Queue one message on the device's connection to each of its brokers; False when none took it."""
        sent = False
        for broker in self.routes[index]:
            sent = self.groups[broker].conn_for(index).send(topic, payload, qos, retain, self.errors) or sent
        return sent

    def connected_brokers(self, index: int) -> int:
        """How many of the device's brokers it is connected to right now (the hello's broker_connections)."""
        return sum(self.groups[b].conn_for(index).connected.is_set() for b in self.routes[index])

    @property
    def conns(self) -> list[Conn]:
        """Every live connection."""
        return [c for g in list(self.groups.values()) for c in g.conns]

    @property
    def acked(self) -> int:
        """Messages the broker acknowledged (PUBACK, or PUBCOMP at QoS 2)."""
        return sum(c.acked for c in [*self.conns, *self._retired])

    def connected(self) -> bool:
        """Readiness: every connection is up."""
        return all(c.connected.is_set() for c in self.conns)

    def close(self, timeout: float = 10.0) -> None:
        """Flush and disconnect every connection."""
        for c in self.conns:
            c.stop(timeout)
