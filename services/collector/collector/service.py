"""The ingest path shared by MQTT and HTTP: validate, identify, sequence, publish, dead-letter."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import orjson

from collector.directory import Entry
from collector.liveness import SeenNotices
from collector.ports import Directory, Publisher, SeqStore
from collector.seq import SequenceTracker, Status, Verdict
from iothub import topology
from iothub.contract import GapNotice, IngestMessage, InvalidMessage, Reason, parse
from iothub.contract.envelope import Envelope
from iothub.errors import Unavailable

log = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, REJECTED, FAILED = "accepted", "duplicate", "rejected", "failed"


def fingerprint(body: dict) -> int:
    """32-bit print of a message's content; the same message sent twice (or to two brokers) prints the same."""
    # Canonical (sorted keys) so a copy serialised again by another path still matches; 0 means "unknown".
    return zlib.crc32(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)) or 1


class Observer(Protocol):
    """Where outcomes are counted (collector.metrics)."""

    def received(self, source: str, msg_type: str) -> None: ...
    def outcome(self, source: str, outcome: Outcome) -> None: ...
    def confirmed(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one message ended; `reason` is set for rejections."""

    kind: str
    msg_id: str | None = None
    reason: Reason | None = None
    detail: str = ""
    verdict: Verdict | None = None


Done = Callable[[Outcome], None]


@dataclass(slots=True, eq=False)
class _Flight:
    key: tuple[str, int, int]  # (device_id, epoch, seq)
    ok: bool | None = None
    waiters: list[Callable[[bool], None]] = field(default_factory=list)  # duplicates acked once this lands


class Ingest:
    """Turns raw device bytes into confirmed broker messages; `done` runs once per message."""

    def __init__(self, publisher: Publisher, directory: Directory, store: SeqStore, observer: Observer, *,
                 max_bytes: int, reboot_uptime_s: int, prefix: str = "", seen_interval: float = 1.0,
                 derive: Callable[[dict], tuple[dict, ...]] | None = None):
        self._publisher = publisher
        self._directory = directory
        self._store = store
        self._observer = observer
        self._max_bytes = max_bytes
        self._prefix = prefix
        self._tracker = SequenceTracker(store.load, reboot_uptime_s=reboot_uptime_s)
        self._lock = threading.Lock()
        self._preload()
        self._flights: dict[tuple[str, int, int], _Flight] = {}  # unsettled accepted messages by (device, epoch, seq)
        self._seen = SeenNotices(publisher, interval=seen_interval, clock=time.monotonic)
        self._derive = derive  # metering hook (issue 13): derived power added to published telemetry

    def _preload(self) -> None:
        try:
            states = self._store.load_all()
        except Unavailable as exc:  # a database down at start: fall back to loading devices one by one
            log.warning("sequence state preload failed", extra={"error": str(exc)})
            return
        with self._lock:
            self._tracker.preload(states)

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
        self._publish(env, entry, source, done, received, redelivered)

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
        headers = {topology.DL_REASON: reason.value, topology.DL_DETAIL: detail[:500],
                   topology.DL_SOURCE: source, topology.DL_ROUTING_KEY: routing_key}

        def confirmed(ok: bool) -> None:
            self._finish(source, done, outcome if ok else Outcome(FAILED, reason=reason, detail="dead-letter failed"))

        self._publisher.publish(topology.DEAD_LETTER_EXCHANGE, "", raw, confirmed, headers=headers)

    def _publish(self, env: Envelope, entry: Entry, source: str, done: Done, received: float,
                 redelivered: bool = False) -> None:
        flight = None
        device_type = entry.device_type
        if env.is_sequenced:
            uptime = env.body["uptime_s"] if env.msg_type == "hello" else None  # validated only in hellos
            print_ = fingerprint(env.body)
            with self._lock:
                verdict = self._tracker.observe(env.device_id, env.seq, msg_type=env.msg_type, uptime_s=uptime,
                                                ts=env.ts, print_=print_, registration=entry.registration)
                key = (env.device_id, verdict.epoch, env.seq)
                original = self._flights.get(key)
                if verdict.accepted:
                    flight = self._flights[key] = _Flight(key)
                elif original is not None:
                    # Its original (from another broker, or redelivered early) is not confirmed yet: acking the copy
                    # now would lose the message if that publish then failed.
                    original.waiters.append(lambda ok: self._finish(
                        source, done, Outcome(DUPLICATE, verdict=verdict) if ok else Outcome(FAILED, verdict=verdict)))
            if not verdict.accepted:
                if not redelivered:  # a broker's redelivery after our restart is old news, not a sign of life
                    self._seen.note(env.device_id, device_type, "duplicate")
                if original is None:
                    self._finish(source, done, Outcome(DUPLICATE, verdict=verdict))
                return
        else:
            verdict = None
        epoch = verdict.epoch if verdict else 0

        def land(ok: bool) -> None:
            if flight is not None:
                with self._lock:
                    flight.ok = ok
                    if self._flights.get(flight.key) is flight:
                        del self._flights[flight.key]
                    if not ok:
                        self._tracker.release(env.device_id, epoch, env.seq, time.monotonic())
                    waiters, flight.waiters = flight.waiters, []
                for waiter in waiters:  # outside the lock: they ack on the MQTT connection
                    waiter(ok)

        try:
            derived = self._derive(env.body) if self._derive and env.msg_type == "telemetry" else ()
            msg = IngestMessage.from_envelope(env, device_type=device_type, epoch=epoch, source=source,
                                              derived=derived)
            body = msg.encode()
        except Exception:
            land(False)  # an unsettled flight would hold back every later flush of sequence state
            raise
        if verdict is not None and verdict.status is Status.GAP:
            self._publish_gap(msg, verdict)
        outcome = Outcome(ACCEPTED, msg.msg_id, verdict=verdict)

        def confirmed(ok: bool) -> None:
            land(ok)
            if ok:
                self._observer.confirmed(time.monotonic() - received)
            self._finish(source, done, outcome if ok else Outcome(FAILED, msg.msg_id, verdict=verdict))

        key = topology.telemetry_key(env.msg_type, device_type, env.device_id)
        # Bundled: RabbitMQ then persists and confirms a burst once per queue instead of once per message.
        self._publisher.publish(topology.TELEMETRY_EXCHANGE, key, body, confirmed, message_id=msg.msg_id,
                                bundle=topology.bundle_key(env.msg_type, device_type), order=env.device_id)

    def _publish_gap(self, msg: IngestMessage, verdict: Verdict) -> None:
        notice = GapNotice(msg.device_id, msg.device_type, msg.epoch, verdict.expected, msg.seq, verdict.missing,
                           datetime.now(UTC).isoformat())
        key = topology.notice_key("gap", msg.device_type, msg.device_id)
        # Gap notices are advisory: a lost one is not worth withholding the device's ack.
        self._publisher.publish(topology.NOTICES_EXCHANGE, key, notice.encode(), lambda ok: None)

    def _token_ok(self, device_id: str, token: str | None) -> bool:
        expected = self._directory.token_hash(device_id)
        if not token or not expected:
            return False
        return hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), expected.lower())

    def _finish(self, source: str, done: Done, outcome: Outcome) -> None:
        self._observer.outcome(source, outcome)
        done(outcome)

    def flush(self, *, settle_timeout: float = 10.0) -> int:
        """Persist changed sequence state once every message it covers is confirmed; returns rows written."""
        now = time.monotonic()
        with self._lock:
            rows = self._tracker.take_dirty(now)
            flights = list(self._flights.values())
        if not rows:
            return 0
        deadline = now + settle_timeout
        # Storing a seq as seen before the broker confirmed it would turn a redelivery into a lost message.
        unsettled = [f for f in flights if f.ok is None]
        while unsettled and time.monotonic() < deadline:
            time.sleep(0.01)  # the flusher's own pacing; confirms settle on the publisher's I/O thread
            unsettled = [f for f in unsettled if f.ok is None]
        if not all(f.ok for f in flights):
            with self._lock:
                self._tracker.mark_dirty([r.device_id for r in rows])
            return 0
        try:
            self._store.save(rows)
        except Unavailable:
            with self._lock:
                self._tracker.mark_dirty([r.device_id for r in rows])
            raise
        return len(rows)

    @property
    def in_flight(self) -> int:
        """Sequenced messages published but not yet settled."""
        return len(self._flights)
