"""Wiring of the rule engine's adapters around the service; used by __main__ and by in-process tests."""

from __future__ import annotations

import logging
import os
import socket
import threading

from iothub import topology
from iothub.db import Database
from iothub.errors import Unavailable
from iothub.rabbit import ConfirmPublisher
from iothub.rabbit.partitioned import PartitionedConsumer, PartitionSettings
from rule_engine import metrics
from rule_engine.changes import Changes
from rule_engine.consumer import GROUP, RuleHandler, RulesListener
from rule_engine.logged import LoggingMiddleware
from rule_engine.relay import OutboxRelay
from rule_engine.repository import PostgresStore
from rule_engine.service import RuleService
from rule_engine.settings import Settings

log = logging.getLogger(__name__)


class RuleEngineApp:
    """One replica: evaluates the partitions RabbitMQ gives it, relays the outbox, listens for rule changes."""

    # Every replica subscribes to every partition queue (single active consumer): each partition is evaluated by
    # exactly one replica at a time, which loads that partition's state when it acquires it; see
    # iothub.rabbit.partitioned for the spreading and the failover, and README "Partitions" for the fencing.

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.database_url, maxconn=settings.db_pool_size, application_name="rule-engine")
        self.publisher = ConfirmPublisher(settings.amqp_url, name="rule-engine-outbox")
        self.relay = OutboxRelay(self.db, self.publisher, batch=settings.outbox_batch,
                                 interval=settings.outbox_interval_s, on_published=metrics.record_outbox,
                                 retention_s=settings.outbox_retention_h * 3600)
        self.service: RuleService | None = None
        self.handler: RuleHandler | None = None
        self.consumer: PartitionedConsumer | None = None
        self.listener: RulesListener | None = None
        self.serving = threading.Event()  # the rules are loaded and the consumer runs
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> RuleEngineApp:
        """Start the relay, then (once the rules load) the rules listener and the partition consumer."""
        self.publisher.start()
        self.relay.start()
        self._spawn(self._serve, "rule-engine")
        return self

    def _spawn(self, target, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def _load_service(self) -> RuleService | None:
        s = self.settings
        store = PostgresStore(self.db, owner=f"{socket.gethostname()}:{os.getpid()}")
        while not self._stop.is_set():
            try:
                return RuleService(store, partitions=s.ingest_partitions, min_reload_s=s.rules_min_reload_s,
                                   max_rule_age_s=s.rules_max_age_s, persist_seen_s=s.persist_seen_s,
                                   offline_max_lag_s=s.offline_max_lag_s, intervals_refresh_s=s.config_refresh_s)
            except Unavailable as exc:
                log.warning("loading rules failed, retrying", extra={"error": str(exc)})
                self._stop.wait(2.0)
        return None

    def _serve(self) -> None:
        s = self.settings
        service = self._load_service()
        if service is None:
            return
        self.service = service
        self.handler = RuleHandler(LoggingMiddleware(metrics.MetricsMiddleware(service)), self.publisher,
                                   on_changes=self._changed, sweep_interval_s=s.sweep_interval_s)
        self.consumer = PartitionedConsumer(s.amqp_url, self.handler, PartitionSettings(
            GROUP, s.ingest_partitions, topology.rule_engine_queue, prefetch=s.prefetch, batch_size=s.batch_size,
            rebalance_interval=s.rebalance_interval, tick_interval=s.sweep_interval_s))
        self.listener = RulesListener(s.amqp_url, service.rules_changed).start()
        self.serving.set()
        if not self._stop.is_set():  # stop() sets the flag before it looks for a consumer to stop
            self.consumer.run()

    def _changed(self, changes: Changes) -> None:
        if changes.outbox:
            self.relay.wake()

    def ready(self) -> bool:
        """The database answers, the relay can publish, and the consumer is subscribed to the partitions."""
        consuming = self.consumer is not None and self.consumer.connected.is_set()
        return consuming and self.publisher.ready and self.db.ping()

    def stop(self) -> None:
        """Finish the current batch (acked or requeued), publish what is committed, close connections."""
        self._stop.set()
        if self.consumer is not None:
            self.consumer.stop()
        for thread in self._threads:
            thread.join(15)
        if self.listener is not None:
            self.listener.stop()
        self.relay.stop()
        self.publisher.stop()
        self.db.close()
