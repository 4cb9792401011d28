"""The sequencer as the handler of the ingest partitions (iothub.rabbit.partitioned does the consuming).

Each batch is judged, published, confirmed and its sequence state committed before the consumer acks it, so a
replica taking a partition over finds the state of everything acked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from collector.ports import Publisher
from collector.sequencing.service import Batch, Sequencer
from iothub import topology
from iothub.contract import BridgedMessage
from iothub.errors import Unavailable
from iothub.rabbit.consumer import Delivery

log = logging.getLogger(__name__)
GROUP = "sequencer"  # members queue "sequencer.members", metrics label


class NotConfirmed(Unavailable):
    """RabbitMQ did not confirm every publish of a batch in time (nack, lost connection, timeout)."""


class SequencerHandler:
    """Implements iothub.rabbit.partitioned.PartitionHandler over a Sequencer."""

    def __init__(self, sequencer: Sequencer, publisher: Publisher, *, confirm_timeout: float = 30.0):
        self._sequencer = sequencer
        self._publisher = publisher
        self._confirm_timeout = confirm_timeout

    def reset(self) -> None:
        """Start from the stored state of every device (ownership may have moved while we were away)."""
        self._sequencer.reset()

    def acquired(self, partition: int) -> None:
        """A partition is ours now: its devices' states are read afresh (their last owner moved them on)."""
        self._sequencer.forget_partitions({partition})

    def tick(self, partition: int) -> None:
        """Nothing to do on a clock: sequencing is driven by messages alone."""

    def released(self, partitions: set[int]) -> None:
        """Drop the state of the devices of partitions handed over."""
        self._sequencer.forget_partitions(partitions)

    def handle(self, batch: Sequence[Delivery]) -> None:
        """Judge, publish and confirm, then commit the state; raises (and forgets the batch's devices) otherwise."""
        messages, parked = [], Batch(set())
        for delivery in batch:
            try:
                messages.append(BridgedMessage.decode(delivery.body))
            except (ValueError, KeyError, TypeError) as exc:  # not from a bridge of ours: park it, never loop
                self._park(delivery, str(exc), parked)
        parked.close()
        judged = self._sequencer.sequence(messages)
        if not (judged.wait(self._confirm_timeout) and parked.wait(self._confirm_timeout)):
            self._sequencer.forget(judged.devices)
            raise NotConfirmed(f"a batch of {len(batch)} was not confirmed")
        self._sequencer.commit()

    def _park(self, delivery: Delivery, detail: str, batch: Batch) -> None:
        headers = topology.dead_letter_headers("bad_message", detail[:500], GROUP, exchange=delivery.exchange,
                                               routing_key=delivery.routing_key)
        batch.expect()
        self._publisher.publish(topology.DEAD_LETTER_EXCHANGE, "", delivery.body, batch.confirmed, headers=headers)
        log.warning("ingest message dead-lettered", extra={"detail": detail[:200]})
