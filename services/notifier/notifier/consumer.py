"""The event-change consumer: decodes a batch, dead-letters poison, stores the plan, then lets the broker ack."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from iothub.errors import Rejected
from iothub.rabbit import Delivery
from notifier import events, metrics
from notifier.service import Service


def make_handler(service: Service, on_stored: Callable[[], None] = lambda: None):
    """BatchConsumer handler: Rejected for undecodable bodies; Unavailable from the store retries the batch."""

    def handle(batch: Sequence[Delivery]) -> dict[int, Rejected]:
        failures: dict[int, Rejected] = {}
        changes = []
        for index, delivery in enumerate(batch):
            try:
                changes.append(events.decode(delivery.body, delivery.message_id, delivery.routing_key))
            except events.InvalidChange as exc:
                failures[index] = Rejected(exc.reason, exc.detail)
        if changes:
            service.accept(changes)  # durably stored before BatchConsumer acks
            on_stored()
        if failures:
            metrics.rejected(len(failures))
        return failures

    return handle
