"""Batching RabbitMQ consumer with the one policy that decides ack, retry or dead-letter.

Policy, for every delivered message:
- handler succeeded                     -> ack (after the handler stored it durably);
- handler raised `Rejected` for it      -> publish to the dead-letter exchange with the reason, then ack;
- handler raised `Unavailable`          -> keep it, back off and retry the whole batch, forever
                                           (a store outage must never lose data);
- handler raised anything else          -> retry message by message; a message failing on its
                                           `max_attempts`-th delivery (counted by the quorum queue, so
                                           across restarts) is dead-lettered with the error;
- the consumer died with it unacked      -> the queue's own delivery limit (iothub.topology.quorum)
                                           dead-letters it, reason `delivery_limit`.
A batch is handled as soon as the input is momentarily idle (IDLE_S), or when it reaches batch_size, or batch_wait
after its first message: a fixed wait would add to the latency of every hop when nothing more is coming.
A bundle (iothub.rabbit.bundle) is handled as its parts, keeping those the queue's bindings match; it is
acked once every part is stored or dead-lettered, and requeued whole when any part must be retried
(handlers are idempotent, so the stored parts coming back is harmless).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pika
from prometheus_client import Counter, Gauge, Histogram

from iothub import topology
from iothub.errors import Rejected, Unavailable
from iothub.rabbit import bundle
from iothub.rabbit.supervise import keep_running, parameters

log = logging.getLogger(__name__)
# "Momentarily idle": nothing more arrived within this long, so a batch is flushed without waiting for batch_wait
# (which only caps how long a batch may keep growing while input keeps coming).
IDLE_S = 0.002
DELIVERY_COUNT = "x-delivery-count"  # set by quorum queues on every redelivery

CONSUMED = Counter("iothub_consumer_messages_total", "Messages settled by consumers", ["queue", "outcome"])
BATCH_SECONDS = Histogram("iothub_consumer_batch_seconds", "Handler time per batch", ["queue"])
BATCH_SIZE = Histogram("iothub_consumer_batch_size", "Messages per handled batch", ["queue"],
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500))
RETRIES = Counter("iothub_consumer_retries_total", "Batches retried because a dependency was down", ["queue"])
BACKLOG = Gauge("iothub_queue_backlog", "AMQP messages ready in the queue at the last check (a bundle counts once)",
                ["queue"])


@dataclass(slots=True)
class Delivery:
    """One message as the handler sees it."""

    body: bytes
    routing_key: str
    exchange: str
    headers: dict
    message_id: str | None
    redelivered: bool
    tag: int = field(repr=False, default=0)
    deliveries: int = 1  # how often the broker delivered it, restarts included (quorum queues' x-delivery-count)
    content_type: str | None = field(repr=False, default=None)  # set on a message parked whole (a bad bundle)


# A handler stores a batch and returns, per failed message, the Rejected error (others are stored).
BatchHandler = Callable[[Sequence[Delivery]], dict[int, Rejected] | None]


@dataclass(frozen=True)
class ConsumerConfig:
    """Tuning of one consumer."""

    queue: str
    batch_size: int = 200
    batch_wait: float = 0.2
    prefetch: int = 1000
    max_attempts: int = 5
    max_backoff: float = 15.0


class BatchConsumer:
    """Consumes a queue in batches on a BlockingConnection; reconnects and redelivery are normal."""

    def __init__(self, url: str, config: ConsumerConfig, handler: BatchHandler, *, name: str = "consumer"):
        self._params = parameters(url, name)
        self.config = config
        self._handler = handler
        self._stop = threading.Event()
        self._attempts: dict[str, int] = {}
        self._pending: list[Delivery] = []
        self._first_at = 0.0
        # Binding patterns per exchange, to pick bundle parts; None for queues outside the topology (take all).
        queue = next((q for q in topology.QUEUES if q.name == config.queue), None)
        self._patterns: dict[str, list[str]] | None = None
        if queue is not None:
            self._patterns = {}
            for exchange, key in queue.bindings:
                self._patterns.setdefault(exchange, []).append(key)
        self.connected = threading.Event()

    def stop(self) -> None:
        """Ask the loop to finish its current batch and return."""
        self._stop.set()

    def run(self) -> None:
        """Consume until stop(); survives broker restarts."""
        keep_running(self._consume, self._stop, what=self.config.queue, on_lost=self._lost,
                     max_backoff=self.config.max_backoff)

    def _lost(self) -> None:
        self.connected.clear()
        self._pending.clear()  # unacked messages come back from the broker

    def _consume(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            channel = conn.channel()
            topology.declare(channel)
            channel.confirm_delivery()  # dead-letter publishes are confirmed before the ack
            channel.basic_qos(prefetch_count=self.config.prefetch)
            channel.basic_consume(self.config.queue, self._on_message)
            self.connected.set()
            last_depth = 0.0
            while not self._stop.is_set():
                before = len(self._pending)
                conn.process_data_events(time_limit=self._wait_time())
                if self._pending and (len(self._pending) == before  # input idle: nothing more is coming now
                                      or len(self._pending) >= self.config.batch_size
                                      or time.monotonic() - self._first_at >= self.config.batch_wait):
                    self._flush(conn, channel)
                if time.monotonic() - last_depth > 5:
                    last_depth = time.monotonic()
                    depth = channel.queue_declare(self.config.queue, passive=True).method.message_count
                    BACKLOG.labels(self.config.queue).set(depth)
            if self._pending:
                self._flush(conn, channel)
        finally:
            if conn.is_open:
                conn.close()

    def _wait_time(self) -> float:
        if not self._pending:
            return 0.5
        return max(0.0, min(IDLE_S, self.config.batch_wait - (time.monotonic() - self._first_at)))

    def _on_message(self, channel, method, props, body) -> None:
        if not self._pending:
            self._first_at = time.monotonic()
        try:
            messages = unpack(method, props, body)
        except ValueError as exc:  # not a bundle we can read: park it whole, like any other poison message
            park(channel, whole(method, props, body), Rejected("bad_bundle", str(exc)), self.config.queue)
            CONSUMED.labels(self.config.queue, "dead_lettered").inc()
            channel.basic_ack(method.delivery_tag)
            return
        if props.content_type != bundle.CONTENT_TYPE:
            self._pending += messages
            return
        wanted = [m for m in messages if self._wants(method.exchange, m.routing_key)]
        if not wanted:
            channel.basic_ack(method.delivery_tag)
        self._pending += wanted

    def _wants(self, exchange: str, routing_key: str) -> bool:
        """Whether this queue's bindings select a bundle part (queues outside the topology take every part)."""
        if self._patterns is None:
            return True
        return bundle.wanted(routing_key, self._patterns.get(exchange, ()))

    def _flush(self, conn, channel) -> None:
        batch, self._pending = self._pending, []
        BATCH_SIZE.labels(self.config.queue).observe(len(batch))
        self._handle(conn, channel, batch)

    def _handle(self, conn, channel, batch: list[Delivery]) -> None:
        outcomes = self._outcomes(conn, channel, batch)
        if outcomes is None:  # stopping: everything unacked comes back from the broker
            return
        queue = self.config.queue
        retry: set[int] = set()
        for delivery, error in zip(batch, outcomes, strict=True):
            if error is None:
                CONSUMED.labels(queue, "stored").inc()
                self._attempts.pop(delivery.message_id or "", None)
            elif isinstance(error, Rejected):
                park(channel, delivery, error, queue)
                CONSUMED.labels(queue, "dead_lettered").inc()
            else:
                retry.add(delivery.tag)
                CONSUMED.labels(queue, "retried").inc()
        # One settlement per delivery tag: the parts of a bundle share theirs.
        for tag in dict.fromkeys(d.tag for d in batch):
            if tag in retry:
                channel.basic_nack(tag, requeue=True)
            else:
                channel.basic_ack(tag)

    def _outcomes(self, conn, channel, batch: list[Delivery]) -> list[Exception | None] | None:
        """Per message: None when stored, Rejected to dead-letter, another error to retry; None when stopping."""
        queue = self.config.queue
        backoff = 0.5
        while True:
            started = time.monotonic()
            try:
                failures = self._handler(batch) or {}
                BATCH_SECONDS.labels(queue).observe(time.monotonic() - started)
                return [failures.get(i) for i in range(len(batch))]
            except Unavailable as exc:
                RETRIES.labels(queue).inc()
                log.warning("dependency unavailable, retrying batch",
                            extra={"queue": queue, "error": str(exc), "batch": len(batch)})
                conn.sleep(backoff)  # sleep while servicing heartbeats
                backoff = min(backoff * 2, self.config.max_backoff)
                if self._stop.is_set():
                    channel.basic_nack(batch[-1].tag, multiple=True, requeue=True)
                    return None
            except Exception:
                if len(batch) == 1:
                    return [self._count_failure(batch[0])]
                outcomes: list[Exception | None] = []
                for delivery in batch:  # isolate the poison message
                    one = self._outcomes(conn, channel, [delivery])
                    if one is None:
                        return None
                    outcomes += one
                return outcomes

    def _count_failure(self, delivery: Delivery) -> Exception:
        key = delivery.message_id or f"{delivery.routing_key}:{hash(delivery.body)}"
        # The broker's count survives our restarts: a message that crashed the previous process counts too.
        attempts = max(self._attempts.get(key, 0) + 1, delivery.deliveries)
        self._attempts[key] = attempts
        log.exception("handler failed", extra={"queue": self.config.queue, "attempt": attempts})
        if attempts >= self.config.max_attempts:
            self._attempts.pop(key, None)
            return Rejected("handler_error", f"failed {attempts} times")
        return RuntimeError("retry")



def whole(method, props, body: bytes) -> Delivery:
    """One AMQP message as it came, bundle or not (to park it whole)."""
    return Delivery(body, method.routing_key, method.exchange, dict(props.headers or {}), props.message_id,
                    method.redelivered, method.delivery_tag, content_type=props.content_type)


def unpack(method, props, body: bytes) -> list[Delivery]:
    """The messages one AMQP message carries: itself, or a bundle's parts (raises ValueError on a bundle whose
    headers do not describe its body); all share its delivery tag and delivery count."""
    headers = dict(props.headers or {})
    deliveries = int(headers.get(DELIVERY_COUNT, 0)) + 1
    if props.content_type != bundle.CONTENT_TYPE:
        return [Delivery(body, method.routing_key, method.exchange, headers, props.message_id, method.redelivered,
                         method.delivery_tag, deliveries)]
    return [Delivery(part.body, part.routing_key, method.exchange, {}, part.message_id, method.redelivered,
                     method.delivery_tag, deliveries) for part in bundle.unpack(body, headers)]


def park(channel, delivery: Delivery, error: Rejected, source: str) -> None:
    """Publish a message to the dead-letter exchange with the reason headers, on a confirming channel."""
    headers = {**delivery.headers, **topology.dead_letter_headers(
        error.reason, error.detail[:1000], source, exchange=delivery.exchange, routing_key=delivery.routing_key)}
    channel.basic_publish(topology.DEAD_LETTER_EXCHANGE, "", delivery.body,
                          pika.BasicProperties(delivery_mode=2, headers=headers, message_id=delivery.message_id,
                                               content_type=delivery.content_type))
    log.warning("message dead-lettered", extra={"source": source, "reason": error.reason,
                                                "detail": error.detail[:200]})
