"""Wiring of the sequencer stage (publisher, sequencer, partition consumer) with start/stop."""

from __future__ import annotations

import threading

from collector import metrics
from collector.metering import power
from collector.sequencing.consumer import GROUP, SequencerHandler
from collector.sequencing.repository import PostgresSeqStore
from collector.sequencing.service import Sequencer
from collector.settings import Settings
from iothub import topology
from iothub.db import Database
from iothub.rabbit import ConfirmPublisher
from iothub.rabbit.partitioned import PartitionedConsumer, PartitionSettings


class SequencerStage:
    """One sequencer replica: active for some partitions, standing by for the others."""

    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.publisher = ConfirmPublisher(settings.amqp_url, name="collector-sequencer",
                                          max_unconfirmed=settings.publish_window)
        self.sequencer = Sequencer(self.publisher, PostgresSeqStore(db), metrics.SequencerObserver(),
                                   partitions=settings.ingest_partitions, reboot_uptime_s=settings.reboot_uptime_s,
                                   derive=power.derive if settings.metering_derive else None)  # metering (issue 13)
        self.consumer = PartitionedConsumer(
            settings.amqp_url, SequencerHandler(self.sequencer, self.publisher),
            PartitionSettings(GROUP, settings.ingest_partitions, topology.ingest_queue,
                              rebalance_interval=settings.rebalance_interval))
        self._thread = threading.Thread(target=self.consumer.run, name="sequencer", daemon=True)

    def start(self, timeout: float = 15.0) -> SequencerStage:
        """Open the publisher, then consume the partitions."""
        self.publisher.start(timeout)
        self._thread.start()
        if not self.consumer.connected.wait(timeout):
            raise TimeoutError("sequencer did not subscribe to its partitions")
        return self

    def checks(self) -> dict:
        """Readiness probes for iothub.health.serve."""
        return {"rabbitmq": lambda: self.publisher.ready and self.consumer.connected.is_set(),
                "database": self.db.ping}

    def stop(self) -> None:
        """Finish the batch in hand (acked or requeued), then close RabbitMQ."""
        self.consumer.stop()
        self._thread.join(15)
        self.publisher.stop()
