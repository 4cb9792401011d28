"""The sequencer: one partition's device messages in, each judged once, accepted ones published on.

It owns the sequence state of the devices of the partitions it is the active consumer of (collector.sequencing.
consumer); duplicates across brokers and bridges, gaps, reboots and wrap-around are decided here, nowhere else.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson

from collector.liveness import SeenNotices
from collector.ports import Publisher
from collector.sequencing.ports import SeqStore
from collector.sequencing.seq import DeviceSeq, SequenceTracker, Status, Verdict
from iothub import topology
from iothub.contract import BridgedMessage, GapNotice, IngestMessage
from iothub.errors import Unavailable


def fingerprint(body: dict) -> int:
    """32-bit print of a message's content; the same message sent twice (or to two brokers) prints the same."""
    # Canonical (sorted keys) so a copy serialised again by another path still matches; 0 means "unknown".
    return zlib.crc32(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)) or 1


class Observer(Protocol):
    """Where verdicts are counted (collector.metrics)."""

    def judged(self, source: str, verdict: Verdict | None) -> None:
        """One message judged (verdict None: not sequenced, published as it is)."""


class Batch:
    """The publishes of one batch; settled once every confirm is in."""

    def __init__(self, devices: set[str]):
        self.devices = devices
        self._left = 1  # the batch itself, released by close(), so an empty batch settles too
        self._ok = True
        self._lock = threading.Lock()
        self._settled = threading.Event()

    def expect(self) -> None:
        """One more publish to wait for."""
        with self._lock:
            self._left += 1

    def confirmed(self, ok: bool) -> None:
        """One publish settled."""
        with self._lock:
            self._ok = self._ok and ok
            self._left -= 1
            done = self._left == 0
        if done:
            self._settled.set()

    def close(self) -> None:
        """Every publish of the batch is issued."""
        self.confirmed(True)

    def wait(self, timeout: float) -> bool:
        """True once every publish is confirmed; False on a nack, a lost connection or the timeout."""
        return self._settled.wait(timeout) and self._ok


@dataclass(frozen=True, slots=True)
class Judged:
    """A message and its verdict (None for unsequenced messages)."""

    message: BridgedMessage
    verdict: Verdict | None


class Sequencer:
    """Judges messages and publishes the accepted ones; not thread-safe (one consumer thread drives it)."""

    def __init__(self, publisher: Publisher, store: SeqStore, observer: Observer, *, partitions: int,
                 reboot_uptime_s: int, seen_interval: float = 1.0,
                 derive: Callable[[dict], tuple[dict, ...]] | None = None):
        self._publisher = publisher
        self._store = store
        self._observer = observer
        self._reboot_uptime_s = reboot_uptime_s
        self._tracker = SequenceTracker(store.load, reboot_uptime_s=reboot_uptime_s)
        self._uncommitted: set[str] = set()  # devices of the batches sequenced since the last commit
        self._partitions = partitions
        self._derive = derive  # metering (issue 13): derived power published with the accepted telemetry
        self._seen = SeenNotices(publisher, interval=seen_interval, clock=time.monotonic, partitions=partitions)

    def state(self, device_id: str) -> DeviceSeq | None:
        """A device's current sequence state (tests and diagnostics)."""
        return self._tracker.state(device_id)

    def reset(self) -> None:
        """Forget every state: a new connection may own other partitions, and their states moved on meanwhile."""
        self._tracker = SequenceTracker(self._store.load, reboot_uptime_s=self._reboot_uptime_s)
        self._uncommitted = set()

    def forget(self, device_ids: Iterable[str]) -> None:
        """Drop these devices' cached states; they are reloaded from the store when next seen."""
        self._tracker.forget(device_ids)

    def forget_partitions(self, partitions: set[int]) -> None:
        """Drop the cached states of the devices of these partitions (handed over to another sequencer)."""
        self.forget([d for d in self._tracker.known() if topology.partition_of(d, self._partitions) in partitions])

    def sequence(self, messages: Sequence[BridgedMessage]) -> Batch:
        """Judge each message in order and publish what is accepted; raises Unavailable when state cannot load."""
        batch = Batch({m.device_id for m in messages})
        self._uncommitted |= batch.devices
        try:
            unknown = self._tracker.unknown(m.device_id for m in messages if m.seq >= 0)
            if unknown:  # one query for the batch, not one per device
                self._tracker.prime(unknown, self._store.load_many(unknown))
            judged = [self._judge(m) for m in messages]
            for item in judged:
                self._publish(item, batch)
        except Exception:
            # A half-handled batch must leave no marks: its messages come back and would read as duplicates.
            self.forget(batch.devices)
            raise
        batch.close()
        return batch

    def commit(self) -> int:
        """Persist the changed states (after the batch's publishes are confirmed, before its acks)."""
        rows, self._uncommitted = self._tracker.take_dirty(self._uncommitted), set()
        if rows:
            try:
                self._store.save(rows)
            except Unavailable:
                self.forget([r.device_id for r in rows])  # the batch comes back and is judged again
                raise
        return len(rows)

    def _judge(self, msg: BridgedMessage) -> Judged:
        if msg.seq < 0:
            return Judged(msg, None)
        uptime = msg.body.get("uptime_s") if msg.msg_type == "hello" else None  # validated only in hellos
        verdict = self._tracker.observe(msg.device_id, msg.seq, msg_type=msg.msg_type, uptime_s=uptime,
                                        ts=datetime.fromisoformat(msg.ts), print_=fingerprint(msg.body),
                                        registration=msg.registration)
        return Judged(msg, verdict)

    def _publish(self, item: Judged, batch: Batch) -> None:
        msg, verdict = item.message, item.verdict
        self._observer.judged(msg.source, verdict)
        if verdict is not None and not verdict.accepted:
            if not msg.redelivered:  # a broker's redelivery after a restart is old news, not a sign of life
                self._seen.note(msg.device_id, msg.device_type, "duplicate")
            return
        derived = self._derive(msg.body) if self._derive and msg.msg_type == "telemetry" else ()
        accepted = msg.accepted(verdict.epoch if verdict else 0, derived)
        if verdict is not None and verdict.status is Status.GAP:
            self._publish_gap(accepted, verdict)
        batch.expect()
        partition = topology.partition_of(msg.device_id, self._partitions)
        key = topology.telemetry_key(msg.msg_type, msg.device_type, msg.device_id, partition)
        # Bundled: RabbitMQ then persists and confirms a burst once per queue instead of once per message.
        bundle = topology.bundle_key(msg.msg_type, msg.device_type, partition)
        self._publisher.publish(topology.TELEMETRY_EXCHANGE, key, accepted.encode(), batch.confirmed,
                                message_id=accepted.msg_id, bundle=bundle, order=msg.device_id)

    def _publish_gap(self, msg: IngestMessage, verdict: Verdict) -> None:
        notice = GapNotice(msg.device_id, msg.device_type, msg.epoch, verdict.expected, msg.seq, verdict.missing,
                           datetime.now(UTC).isoformat())
        key = topology.notice_key("gap", msg.device_type, msg.device_id,
                                  topology.partition_of(msg.device_id, self._partitions))
        # Gap notices are advisory: a lost one is not worth withholding the device's ack.
        self._publisher.publish(topology.NOTICES_EXCHANGE, key, notice.encode(), lambda ok: None)
