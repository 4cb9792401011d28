"""Consumes the ingest partitions as their single active consumer, batch by batch, and spreads them over replicas.

Every replica subscribes to every partition queue (`x-single-active-consumer`): RabbitMQ delivers each queue to
exactly one of them and fails over to the next when it goes away. Each batch is judged, published, confirmed and
its sequence state committed before it is acked, so a replica taking over finds the state of everything acked.
Spreading: each replica also holds a consumer on SEQUENCERS_QUEUE, whose consumer count is the number of live
replicas; a replica active on more than its share (ceil(P / replicas)) of busy partitions cancels the excess and
subscribes again, which puts it at the back of those queues' lines, so the next replica in line takes them over.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass

import pika
from prometheus_client import Counter, Gauge

from collector.sequencing.service import Sequencer
from iothub import topology
from iothub.contract import BridgedMessage
from iothub.errors import Unavailable
from iothub.rabbit import bundle
from iothub.rabbit.supervise import keep_running, parameters

log = logging.getLogger(__name__)
IDLE_S = 0.002  # flush a batch once nothing more arrived within this long
ACTIVE = Gauge("iothub_sequencer_partitions_active", "Ingest partitions this sequencer delivered from lately")
BACKLOG = Gauge("iothub_ingest_partition_backlog", "Messages ready in an ingest partition", ["partition"])
REQUEUED = Counter("iothub_collector_sequencer_batches_requeued",
                   "Batches handed back to their partition because a publish or the state store failed")
OWNED = Gauge("iothub_ingest_partition_consumers", "Active consumers of an ingest partition (0: nobody owns it)",
              ["partition"])


@dataclass(frozen=True)
class ConsumerSettings:
    """Tuning of the partition consumer."""

    partitions: int
    prefetch: int = 64  # AMQP messages (bundles) per partition
    batch_size: int = 2000  # device messages per batch
    confirm_timeout: float = 30.0
    rebalance_interval: float = 5.0


class PartitionConsumer:
    """Drives a Sequencer from the partition queues on one BlockingConnection; reconnects with backoff."""

    def __init__(self, url: str, sequencer: Sequencer, settings: ConsumerSettings, *, name: str = "sequencer"):
        self._params = parameters(url, name)
        self._sequencer = sequencer
        self._settings = settings
        self._stop, self.connected = threading.Event(), threading.Event()
        self._pending: list[tuple[int, BridgedMessage]] = []  # (delivery tag, message)
        self._tags: dict[str, int] = {}  # consumer tag -> partition
        self._busy: set[int] = set()  # partitions that delivered within the last rebalance interval
        self.owned: set[int] = set()  # partitions that delivered since their consumer was registered
        self._members_seen = 0
        self._backoff = 0.0  # grows while batches keep failing, so a refusing downstream is not hammered
        self.settled = 0  # device messages judged and acked (read by in-process drain checks)

    def stop(self) -> None:
        """Finish the current batch and return from run()."""
        self._stop.set()

    def run(self) -> None:
        """Consume until stop(); survives broker and database outages."""
        keep_running(self._consume, self._stop, what="sequencer", on_lost=self._lost, errors=(Unavailable,))

    def _lost(self) -> None:
        self.connected.clear()
        self._pending.clear()  # unacked messages come back from the broker

    def _consume(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            channel = conn.channel()
            topology.declare(channel, self._settings.partitions)
            q = topology.SEQUENCERS_QUEUE
            channel.queue_declare(q.name, durable=True, arguments=q.arguments)
            channel.basic_qos(prefetch_count=self._settings.prefetch)
            # Ownership may have moved while we were away: start from the stored state of every device.
            self._sequencer.reset()
            self._tags.clear()
            self._busy.clear()
            self.owned.clear()
            channel.basic_consume(q.name, lambda *_: None, consumer_tag=f"member-{uuid.uuid4().hex[:8]}")
            for partition in range(self._settings.partitions):
                self._subscribe(channel, partition)
            self.connected.set()
            last_check = time.monotonic()
            while not self._stop.is_set():
                before = len(self._pending)
                conn.process_data_events(time_limit=IDLE_S if self._pending else 0.2)
                if self._pending and (len(self._pending) == before or len(self._pending) >= self._settings.batch_size):
                    self._flush(conn, channel)
                # Between batches only: a handover must not strand a message judged but not yet acked.
                if not self._pending and time.monotonic() - last_check > self._settings.rebalance_interval:
                    last_check = time.monotonic()
                    self._rebalance(channel)
            if self._pending:
                self._flush(conn, channel)
        finally:
            if conn.is_open:
                conn.close()

    def _subscribe(self, channel, partition: int) -> None:
        tag = channel.basic_consume(topology.ingest_queue(partition).name, self._on_message,
                                    consumer_tag=f"p{partition}-{uuid.uuid4().hex[:8]}")
        self._tags[tag] = partition

    def _on_message(self, channel, method, props, body) -> None:
        partition = self._tags.get(method.consumer_tag, -1)
        self._busy.add(partition)
        self.owned.add(partition)
        try:
            parts = (bundle.unpack(body, props.headers) if props.content_type == bundle.CONTENT_TYPE
                     else [bundle.Part(body, method.routing_key, props.message_id)])
            messages = [BridgedMessage.decode(p.body) for p in parts]
        except (ValueError, KeyError, TypeError) as exc:  # not from a bridge of ours: park it, never loop on it
            self._dead_letter(channel, method, props, body, str(exc))
            channel.basic_ack(method.delivery_tag)
            return
        self._pending.extend((method.delivery_tag, m) for m in messages)

    def _flush(self, conn, channel) -> None:
        pending, self._pending = self._pending, []
        last_tag = pending[-1][0]
        messages = [m for _, m in pending]
        try:
            batch = self._sequencer.sequence(messages)
            if batch.wait(self._settings.confirm_timeout):
                self._sequencer.commit()
                channel.basic_ack(last_tag, multiple=True)
                self.settled += len(messages)
                self._backoff = 0.0
                return
            log.warning("sequenced batch not confirmed; requeued", extra={"messages": len(messages)})
        except Unavailable as exc:
            log.warning("sequence state unavailable; batch requeued", extra={"error": str(exc)})
        except Exception:  # a bug on some message: requeue; the queue's delivery limit parks it if it persists
            log.exception("sequencing failed; batch requeued", extra={"messages": len(messages)})
        REQUEUED.inc()
        self._sequencer.forget({m.device_id for m in messages})
        self._backoff = min(max(self._backoff * 2, 0.25), 15.0)
        conn.sleep(self._backoff)  # back off while servicing heartbeats
        channel.basic_nack(last_tag, multiple=True, requeue=True)

    def _rebalance(self, channel) -> None:
        """Hand partitions beyond this replica's share to the next replica in their lines."""
        members = channel.queue_declare(topology.SEQUENCERS_QUEUE.name, passive=True).method.consumer_count
        self._report(channel)
        busy = sorted(self._busy)
        ACTIVE.set(len(busy))
        stable, self._members_seen = members == self._members_seen, members
        share = math.ceil(self._settings.partitions / max(members, 1))
        if not stable or len(busy) <= share or members < 2:
            self._busy.clear()  # "lately": a partition that stays quiet for an interval no longer counts
            return
        give = set(busy[share:])
        log.info("handing over partitions", extra={"partitions": sorted(give), "replicas": members})
        for tag, partition in list(self._tags.items()):
            if partition in give:
                # Delivered to us but not yet dispatched: back to the queue, for the partition's next owner.
                for method, _props, _body in channel.basic_cancel(tag) or ():
                    channel.basic_nack(method.delivery_tag, requeue=True)
                del self._tags[tag]
        self.owned -= give
        self._sequencer.forget_partitions(give)
        for partition in sorted(give):
            self._subscribe(channel, partition)
        self._busy.clear()

    def _report(self, channel) -> None:
        for partition in range(self._settings.partitions):
            ok = channel.queue_declare(topology.ingest_queue(partition).name, passive=True).method
            BACKLOG.labels(str(partition)).set(ok.message_count)
            OWNED.labels(str(partition)).set(ok.consumer_count)

    def _dead_letter(self, channel, method, props, body: bytes, detail: str) -> None:
        headers = dict(props.headers or {})
        headers.update({topology.DL_REASON: "bad_message", topology.DL_DETAIL: detail[:500],
                        topology.DL_SOURCE: "sequencer", topology.DL_EXCHANGE: method.exchange,
                        topology.DL_ROUTING_KEY: method.routing_key})
        channel.basic_publish(topology.DEAD_LETTER_EXCHANGE, "", body,
                              pika.BasicProperties(delivery_mode=2, headers=headers, content_type=props.content_type))
        log.warning("ingest message dead-lettered", extra={"detail": detail[:200]})
