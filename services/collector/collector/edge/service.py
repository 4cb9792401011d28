"""The edge's ingest path, shared by MQTT and HTTP: validate, identify, hand to the device's partition.

Stateless by design: no per-device sequence state lives here, so any number of bridges may share a subscription
or read different brokers; the partition's sequencer (collector.sequencing) judges duplicates, gaps and reboots.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from collector.edge.directory import Entry
from collector.liveness import SeenNotices
from collector.ports import Publisher
from iothub import topology
from iothub.contract import BridgedMessage, InvalidMessage, Reason, parse
from iothub.contract.envelope import Envelope

ACCEPTED, REJECTED, FAILED = "accepted", "rejected", "failed"


class Directory(Protocol):
    """Known devices: device_id -> device type, HTTP token hash and registration."""

    def lookup(self, device_id: str) -> Entry | None:
        """The device's entry, None when the device is unknown."""

    def cached(self, device_id: str) -> Entry | None:
        """The device's entry when known without asking the database."""

    def token_hash(self, device_id: str) -> str | None:
        """sha256 hex of the device's HTTP ingest token, if it has one."""


class Observer(Protocol):
    """Where outcomes are counted (collector.metrics)."""

    def received(self, source: str, msg_type: str) -> None: ...
    def outcome(self, source: str, outcome: Outcome) -> None: ...
    def confirmed(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one message ended at the edge; `reason` is set for rejections."""

    kind: str
    reason: Reason | None = None
    detail: str = ""


Done = Callable[[Outcome], None]


class Ingest:
    """Turns raw device bytes into confirmed messages on the device's ingest partition; `done` runs once each."""

    def __init__(self, publisher: Publisher, directory: Directory, observer: Observer, *, max_bytes: int,
                 partitions: int, seen_interval: float = 1.0):
        self._publisher = publisher
        self._directory = directory
        self._observer = observer
        self._max_bytes = max_bytes
        self._partitions = partitions
        self._seen = SeenNotices(publisher, interval=seen_interval, clock=time.monotonic, partitions=partitions)
        self.forwarded = 0  # messages confirmed onto their partition (read by in-process drain checks)

    def handle(self, raw: bytes, *, source: str, done: Done, topic_device_id: str | None = None,
               expected_type: str | None = None, routing_key: str = "", token: str | None = None,
               require_token: bool = False, received: float | None = None, redelivered: bool = False) -> None:
        """Process one message; raises Unavailable when the database cannot answer; `redelivered`: the broker
        sent it again (MQTT DUP), so it says nothing about the device being alive now."""
        received = time.monotonic() if received is None else received
        try:
            try:
                env = parse(raw, expected_type=expected_type, topic_device_id=topic_device_id,
                            max_bytes=self._max_bytes)
            except (ValueError, TypeError) as exc:  # e.g. a status message whose "v" int() cannot read
                raise InvalidMessage(Reason.WRONG_TYPE, str(exc)[:200]) from None
            self._observer.received(source, env.msg_type)
            entry = self._directory.lookup(env.device_id)
            if entry is None:
                raise InvalidMessage(Reason.UNKNOWN_DEVICE, f"device {env.device_id} is not registered")
            if require_token and not self._token_ok(env.device_id, token):
                self._finish(source, done, Outcome(REJECTED, reason=Reason.UNAUTHORIZED, detail="bad device token"))
                return
        except InvalidMessage as exc:
            if exc.reason is not Reason.UNKNOWN_DEVICE:
                self._observer.received(source, expected_type or "unknown")
                self._note_rejected(topic_device_id)
            self.dead_letter(raw, exc.reason, exc.detail, source=source, routing_key=routing_key, done=done)
            return
        self._forward(env, entry, source, done, received, redelivered)

    def _note_rejected(self, device_id: str | None) -> None:
        # A registered device whose message is dead-lettered is still alive; an unknown sender is nobody's.
        entry = self._directory.cached(device_id) if device_id is not None else None
        if entry is not None:
            self._seen.note(device_id, entry.device_type, "rejected")

    def reject(self, raw: bytes, reason: Reason, detail: str, *, source: str, routing_key: str, done: Done) -> None:
        """Count and park a message rejected before parsing (unknown topic, oversized HTTP body)."""
        self._observer.received(source, "unknown")
        self.dead_letter(raw, reason, detail, source=source, routing_key=routing_key, done=done)

    def dead_letter(self, raw: bytes, reason: Reason, detail: str, *, source: str, routing_key: str,
                    done: Done) -> None:
        """Park the original bytes with the reason headers; done(REJECTED) after the confirm."""
        outcome = Outcome(REJECTED, reason=reason, detail=detail)
        headers = topology.dead_letter_headers(reason.value, detail[:500], source, routing_key=routing_key)

        def confirmed(ok: bool) -> None:
            self._finish(source, done, outcome if ok else Outcome(FAILED, reason=reason, detail="dead-letter failed"))

        self._publisher.publish(topology.DEAD_LETTER_EXCHANGE, "", raw, confirmed, headers=headers)

    def _forward(self, env: Envelope, entry: Entry, source: str, done: Done, received: float,
                 redelivered: bool) -> None:
        body = BridgedMessage.from_envelope(env, device_type=entry.device_type, registration=entry.registration,
                                            source=source, redelivered=redelivered).encode()

        def confirmed(ok: bool) -> None:
            if ok:
                self.forwarded += 1
                self._observer.confirmed(time.monotonic() - received)
            self._finish(source, done, Outcome(ACCEPTED if ok else FAILED))

        key = topology.partition_key(topology.partition_of(env.device_id, self._partitions))
        # Bundled per partition: RabbitMQ then stores and confirms a burst once instead of once per message.
        self._publisher.publish(topology.INGEST_EXCHANGE, key, body, confirmed, bundle=key, order=env.device_id)

    def _token_ok(self, device_id: str, token: str | None) -> bool:
        expected = self._directory.token_hash(device_id)
        if not token or not expected:
            return False
        return hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), expected.lower())

    def _finish(self, source: str, done: Done, outcome: Outcome) -> None:
        self._observer.outcome(source, outcome)
        done(outcome)
