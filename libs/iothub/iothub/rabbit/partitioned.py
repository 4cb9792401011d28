"""Partitioned consumption: P quorum queues with a single active consumer each, shared by a group's replicas.

Every replica subscribes to every partition queue (`x-single-active-consumer`): RabbitMQ delivers each queue to
exactly one of them and fails over to the next in line when that one's connection goes away. Batches are handed
to the handler in delivery order and acked once it returns (it makes its work durable first); when it raises, the
batch is requeued with backoff, and the queue's delivery limit parks a message that keeps failing.
Spreading: each replica also holds a consumer on the group's members queue, whose consumer count is the number
of live replicas; a replica that delivered from more than its share (ceil(P / replicas)) of partitions within a
rebalance interval cancels the excess and subscribes again, which puts it at the back of those queues' lines, so
the next replica in line takes them over. The handler is told, so it can drop the state of those partitions.
Ownership: RabbitMQ does not tell a consumer it became active, so every replica publishes a tick into every
partition each tick interval; the first delivery (tick or message) from a partition since its consumer registered
tells the handler it `acquired` the partition, before any message of it is handled, so it can load that
partition's state afresh (another replica may have moved it on). Ticks also give the owner of a quiet partition
its clock (`tick`): the rule engine declares a silent partition's devices offline on them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pika
from prometheus_client import Counter, Gauge

from iothub import topology
from iothub.errors import Rejected, Unavailable
from iothub.rabbit.consumer import Delivery, park, unpack, whole
from iothub.rabbit.partition_report import forget_report, report
from iothub.rabbit.supervise import keep_running, parameters

log = logging.getLogger(__name__)
IDLE_S = 0.002  # flush a batch once nothing more arrived within this long
TICK = "application/x-iothub-tick"  # content type of the ticks replicas publish into every partition
ACTIVE = Gauge("iothub_partitions_active", "Partitions this replica delivered from lately", ["group"])
REQUEUED = Counter("iothub_partition_batches_requeued", "Batches handed back to their partitions", ["group"])


class PartitionHandler(Protocol):
    """What a partitioned consumer drives."""

    def reset(self) -> None:
        """A (new) connection: ownership may have moved meanwhile, so forget every partition's state."""

    def acquired(self, partition: int) -> None:
        """The first delivery from this partition since it was subscribed: load its state afresh."""

    def tick(self, partition: int) -> None:
        """Time passes in an owned partition (at least every tick interval, between batches)."""

    def released(self, partitions: set[int]) -> None:
        """These partitions were handed over to another replica: forget their state."""

    def handle(self, batch: Sequence[Delivery]) -> None:
        """Process a batch durably; raise to have it requeued (Unavailable when a dependency is down)."""


@dataclass(frozen=True)
class PartitionSettings:
    """A group's partitions and tuning."""

    group: str  # names the members queue and the metrics
    partitions: int
    queue: Callable[[int], topology.Queue]  # the queue of partition n
    prefetch: int = 64  # AMQP messages (bundles) per partition
    batch_size: int = 2000  # messages (bundle parts) per batch
    rebalance_interval: float = 5.0
    tick_interval: float = 5.0


class PartitionedConsumer:
    """Feeds a PartitionHandler from its partitions on one BlockingConnection; reconnects with backoff."""

    def __init__(self, url: str, handler: PartitionHandler, settings: PartitionSettings):
        self._params = parameters(url, settings.group)
        self._handler = handler
        self._settings = settings
        self._members = topology.members_queue(settings.group)
        self._stop, self.connected = threading.Event(), threading.Event()
        self._pending: list[Delivery] = []
        self._tags: dict[str, int] = {}  # consumer tag -> partition
        self._busy: set[int] = set()  # partitions that delivered within the last rebalance interval
        self.owned: set[int] = set()  # partitions that delivered since their consumer was registered
        self._members_seen = 0
        self._ticked: set[int] = set()  # owned partitions whose tick arrived and awaits the handler
        self._backoff = 0.0  # grows while batches keep failing, so a refusing downstream is not hammered
        self.settled = 0  # messages handled and acked (read by in-process drain checks)
        self._active = ACTIVE.labels(settings.group)
        self._requeued = REQUEUED.labels(settings.group)

    def stop(self) -> None:
        """Finish the current batch and return from run()."""
        self._stop.set()

    def run(self) -> None:
        """Consume until stop(); survives broker and database outages."""
        keep_running(self._consume, self._stop, what=self._settings.group, on_lost=self._lost, errors=(Unavailable,))

    def _lost(self) -> None:
        self.connected.clear()
        self._pending.clear()  # unacked messages come back from the broker
        forget_report([self._settings.queue(p).name for p in range(self._settings.partitions)])

    def _consume(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            channel = conn.channel()
            topology.declare(channel, self._settings.partitions)
            for queue in (self._members, *(self._settings.queue(p) for p in range(self._settings.partitions))):
                topology.declare_queue(channel, queue)
            channel.basic_qos(prefetch_count=self._settings.prefetch)
            self._handler.reset()
            self._tags.clear()
            self._busy.clear()
            self.owned.clear()
            channel.basic_consume(self._members.name, lambda *_: None, consumer_tag=f"member-{uuid.uuid4().hex[:8]}")
            for partition in range(self._settings.partitions):
                self._subscribe(channel, partition)
            self.connected.set()
            last_check = last_tick = 0.0
            while not self._stop.is_set():
                before = len(self._pending)
                conn.process_data_events(time_limit=IDLE_S if self._pending else 0.2)
                if self._pending and (len(self._pending) == before or len(self._pending) >= self._settings.batch_size):
                    self._flush(conn, channel)
                if not self._pending and self._ticked:
                    self._tick()
                if self._settings.tick_interval and time.monotonic() - last_tick > self._settings.tick_interval:
                    last_tick = time.monotonic()
                    self._publish_ticks(channel)
                # Between batches only: a handover must not strand a message handled but not yet acked.
                if not self._pending and time.monotonic() - last_check > self._settings.rebalance_interval:
                    last_check = time.monotonic()
                    self._rebalance(channel)
            if self._pending:
                self._flush(conn, channel)
        finally:
            if conn.is_open:
                conn.close()

    def _subscribe(self, channel, partition: int) -> None:
        tag = channel.basic_consume(self._settings.queue(partition).name, self._on_message,
                                    consumer_tag=f"p{partition}-{uuid.uuid4().hex[:8]}")
        self._tags[tag] = partition

    def _publish_ticks(self, channel) -> None:
        for partition in range(self._settings.partitions):  # straight to the queue, through the default exchange
            channel.basic_publish("", self._settings.queue(partition).name, b"",
                                  pika.BasicProperties(content_type=TICK))

    def _tick(self) -> None:
        ticked, self._ticked = self._ticked, set()
        for partition in sorted(ticked & self.owned):
            try:
                self._handler.tick(partition)
            except Exception:  # a failed round is retried on the next tick
                log.exception("tick failed", extra={"group": self._settings.group, "partition": partition})

    def _on_message(self, channel, method, props, body) -> None:
        partition = self._tags.get(method.consumer_tag, -1)
        if partition not in self.owned:
            self._handler.acquired(partition)  # before any of its messages is handled
            self.owned.add(partition)
        if props.content_type == TICK:
            channel.basic_ack(method.delivery_tag)
            self._ticked.add(partition)
            return
        self._busy.add(partition)
        try:
            self._pending += unpack(method, props, body)
        except ValueError as exc:  # not a bundle we can read: park it whole, never loop on it
            park(channel, whole(method, props, body), Rejected("bad_bundle", str(exc)[:500]),
                 self._settings.group)
            channel.basic_ack(method.delivery_tag)

    def _flush(self, conn, channel) -> None:
        batch, self._pending = self._pending, []
        last_tag = batch[-1].tag
        try:
            self._handler.handle(batch)
            channel.basic_ack(last_tag, multiple=True)
            self.settled += len(batch)
            self._backoff = 0.0
            return
        except Unavailable as exc:
            log.warning("dependency unavailable; batch requeued", extra={"group": self._settings.group,
                                                                          "error": str(exc)})
        except Exception:  # a bug on some message: requeue; the queue's delivery limit parks it if it persists
            log.exception("batch failed; requeued", extra={"group": self._settings.group, "messages": len(batch)})
        self._requeued.inc()
        self._backoff = min(max(self._backoff * 2, 0.25), 15.0)
        conn.sleep(self._backoff)  # back off while servicing heartbeats
        channel.basic_nack(last_tag, multiple=True, requeue=True)

    def _rebalance(self, channel) -> None:
        """Hand partitions beyond this replica's share to the next replica in their lines."""
        members = channel.queue_declare(self._members.name, passive=True).method.consumer_count
        self._report(channel)
        busy = sorted(self._busy)
        self._active.set(len(busy))
        stable, self._members_seen = members == self._members_seen, members
        share = math.ceil(self._settings.partitions / max(members, 1))
        self._busy.clear()  # "lately": a partition that stays quiet for an interval no longer counts
        if not stable or len(busy) <= share or members < 2:
            return
        give = set(busy[share:])
        log.info("handing over partitions", extra={"group": self._settings.group, "partitions": sorted(give),
                                                   "replicas": members})
        for tag, partition in list(self._tags.items()):
            if partition in give:
                # Delivered to us but not yet dispatched: back to the queue, for the partition's next owner.
                for method, _props, _body in channel.basic_cancel(tag) or ():
                    channel.basic_nack(method.delivery_tag, requeue=True)
                del self._tags[tag]
        self.owned -= give
        self._handler.released(give)
        for partition in sorted(give):
            self._subscribe(channel, partition)

    def _report(self, channel) -> None:
        report(channel, [self._settings.queue(p).name for p in range(self._settings.partitions)])
