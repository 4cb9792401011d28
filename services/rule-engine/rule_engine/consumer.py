"""RabbitMQ adapters: the handler of the rule engine's partitions and the iot.rules change listener."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import pika

from iothub import topology
from iothub.errors import Rejected, Unavailable
from iothub.rabbit import Delivery
from iothub.rabbit.supervise import keep_running, parameters
from rule_engine import metrics
from rule_engine.changes import Changes
from rule_engine.decode import decode_batch

log = logging.getLogger(__name__)
GROUP = "rule-engine"  # members queue "rule-engine.members", metrics label, dead-letter source


class Parker(Protocol):
    """Publishes to RabbitMQ and waits for the confirm (ConfirmPublisher.publish_wait)."""

    def publish_wait(self, exchange: str, routing_key: str, body: bytes, **kwargs) -> bool:
        """Publish; True once confirmed."""


class RuleHandler:
    """Implements iothub.rabbit.partitioned.PartitionHandler over the RuleService (through its middlewares)."""

    def __init__(self, api, parker: Parker, *, on_changes: Callable[[Changes], None], sweep_interval_s: float):
        self._api = api
        self._parker = parker
        self._on_changes = on_changes
        self._sweep_every = 0.9 * sweep_interval_s  # every replica ticks each partition: sweep about once a round
        self._swept: dict[int, float] = {}
        self.sweeps = 0  # sweep rounds run (read by tests)

    def reset(self) -> None:
        """A new connection: this replica owns nothing until partitions deliver again."""
        self._api.reset()
        metrics.PARTITIONS_OWNED.set(0)

    def acquired(self, partition: int) -> None:
        """Claim the partition and load its devices' state (raises Unavailable while PostgreSQL is down)."""
        self._api.acquire(partition)
        metrics.PARTITIONS_OWNED.set(len(self._api.owned))
        log.info("partition acquired", extra={"partition": partition})

    def released(self, partitions: set[int]) -> None:
        """Drop the state of partitions handed to another replica."""
        self._api.release(partitions)
        metrics.PARTITIONS_OWNED.set(len(self._api.owned))

    def tick(self, partition: int) -> None:
        """Sweep the partition (offline devices, expired commands) at most about every sweep interval."""
        now = time.monotonic()
        if now - self._swept.get(partition, -1e18) < self._sweep_every:
            return
        self._swept[partition] = now
        self.sweeps += 1
        self._on_changes(self._api.sweep(partition))

    def handle(self, batch: Sequence[Delivery]) -> None:
        """Decode, park what cannot be decoded, evaluate and store; raises to have the batch requeued."""
        inputs, failures = decode_batch([d.body for d in batch])
        for index, error in failures.items():
            self._park(batch[index], error)
        if inputs:
            self._on_changes(self._api.handle(inputs))

    def _park(self, delivery: Delivery, error: Rejected) -> None:
        headers = dict(delivery.headers) | topology.dead_letter_headers(
            error.reason, error.detail[:1000], GROUP, exchange=delivery.exchange, routing_key=delivery.routing_key)
        if not self._parker.publish_wait(topology.DEAD_LETTER_EXCHANGE, "", delivery.body, headers=headers,
                                         message_id=delivery.message_id):
            raise Unavailable("dead letter not confirmed")
        log.warning("undecodable input dead-lettered", extra={"detail": error.detail[:200]})


class RulesListener:
    """Exclusive auto-delete queue on the iot.rules fanout; every notice calls on_change()."""

    def __init__(self, url: str, on_change: Callable[[], None], *, name: str = "rule-engine-rules"):
        self._params = parameters(url, name)
        self._on_change = on_change
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RulesListener:
        """Listen on a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="rules-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def run(self) -> None:
        """Listen until stop(); reconnects with backoff."""
        keep_running(self._listen, self._stop, what="rules listener", on_lost=self.connected.clear, max_backoff=10.0)

    def _listen(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            channel = conn.channel()
            channel.exchange_declare(topology.RULES_EXCHANGE, exchange_type="fanout", durable=True)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            channel.queue_bind(queue, topology.RULES_EXCHANGE)
            channel.basic_consume(queue, lambda *_: self._on_change(), auto_ack=True)
            self._on_change()  # notices missed while disconnected
            self.connected.set()
            while not self._stop.is_set():
                conn.process_data_events(time_limit=0.5)
        finally:
            if conn.is_open:
                conn.close()
