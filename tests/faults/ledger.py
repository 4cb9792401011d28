"""Jepsen-style ledger: what was published versus what each store holds, by (device_id, seq)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt

from iothub.contract.topics import device_topic
from tests.support import mqtt as test_mqtt


@dataclass
class Verdict:
    """Lost, duplicated and unexpected keys in one store."""

    store: str
    lost: list[tuple[str, int]]
    duplicated: list[tuple[str, int]]
    unexpected: list[tuple[str, int]]

    @property
    def ok(self) -> bool:
        """True when the store holds every published key exactly once and nothing else."""
        return not (self.lost or self.duplicated or self.unexpected)

    def summary(self) -> str:
        """One line for assertion messages."""
        return (f"{self.store}: lost={len(self.lost)} duplicated={len(self.duplicated)} "
                f"unexpected={len(self.unexpected)} (first lost: {self.lost[:5]}, dup: {self.duplicated[:5]})")


def compare(store: str, published: Iterable[tuple[str, int]], stored: Iterable[tuple[str, int]]) -> Verdict:
    """Count each stored key against the published set."""
    expected = set(published)
    counts = Counter(stored)
    return Verdict(store,
                   lost=sorted(expected - counts.keys()),
                   duplicated=sorted(k for k, n in counts.items() if n > 1 and k in expected),
                   unexpected=sorted(k for k in counts if k not in expected))


@dataclass
class LedgerPublisher:
    """A device-side publisher: QoS 1, persistent session, records every (device_id, seq) the broker PUBACKed."""

    port: int
    client_id: str
    acked: set[tuple[str, int]] = field(default_factory=set)
    _mids: dict[int, tuple[str, int]] = field(default_factory=dict)
    _early: set[int] = field(default_factory=set)  # PUBACKs that beat publish() returning
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.client = test_mqtt.client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                       clean_session=False)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            key = self._mids.pop(mid, None)
            if key is None:
                self._early.add(mid)
            else:
                self.acked.add(key)

    def publish_telemetry(self, device_id: str, seq: int, value: float, metric: str = "voltage_dc") -> None:
        """Publish one v2 telemetry datagram (paho retransmits it across reconnects until PUBACKed)."""
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        body = orjson.dumps({"v": 2, "device_id": device_id, "ts": now, "seq": seq, "msg_type": "telemetry",
                             "measurements": [{"ts": now, "type": metric, "val": value, "unit": "V"}]})
        # Never hold our lock across publish(): paho calls on_publish under its own mutex, which publish() needs.
        info = self.client.publish(device_topic(device_id, "telemetry"), body, qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked.add((device_id, seq))
            else:
                self._mids[info.mid] = (device_id, seq)

    def pending(self) -> int:
        """Messages not yet PUBACKed."""
        with self._lock:
            return len(self._mids)

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()
