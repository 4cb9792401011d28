"""RabbitMQ adapters: the batch handler for rule-engine.input and the iot.rules change listener."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import pika

from iothub import topology
from iothub.errors import Rejected
from iothub.rabbit import Delivery
from iothub.rabbit.supervise import keep_running, parameters
from rule_engine.changes import Changes
from rule_engine.decode import decode_batch
from rule_engine.model import Input

log = logging.getLogger(__name__)


def make_handler(handle: Callable[[Sequence[Input]], Changes]) -> Callable[[Sequence[Delivery]], dict[int, Rejected]]:
    """A BatchConsumer handler: decode, evaluate and store; undecodable bodies are dead-lettered."""

    def handler(batch: Sequence[Delivery]) -> dict[int, Rejected]:
        inputs, failures = decode_batch([d.body for d in batch])
        if inputs:
            handle(inputs)
        return failures

    return handler


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
