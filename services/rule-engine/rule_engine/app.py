"""Wiring of the rule engine's adapters around the service; used by __main__ and by in-process tests."""

from __future__ import annotations

import logging
import threading

from iothub import topology
from iothub.db import Database
from iothub.errors import Unavailable
from iothub.rabbit import BatchConsumer, ConfirmPublisher, ConsumerConfig
from rule_engine import metrics
from rule_engine.consumer import RulesListener, make_handler
from rule_engine.logged import LoggingMiddleware
from rule_engine.relay import OutboxRelay
from rule_engine.repository import PostgresStore
from rule_engine.service import RuleService
from rule_engine.settings import Settings

log = logging.getLogger(__name__)


class RuleEngineApp:
    """Consumer, rules listener, sweeper and outbox relay around one RuleService."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.database_url, maxconn=settings.db_pool_size, application_name="rule-engine")
        self.service = RuleService(PostgresStore(self.db), min_reload_s=settings.rules_min_reload_s,
                                   max_rule_age_s=settings.rules_max_age_s, persist_seen_s=settings.persist_seen_s,
                                   offline_max_lag_s=settings.offline_max_lag_s)
        self.api = LoggingMiddleware(metrics.MetricsMiddleware(self.service))
        self.publisher = ConfirmPublisher(settings.amqp_url, name="rule-engine-outbox")
        self.relay = OutboxRelay(self.db, self.publisher, batch=settings.outbox_batch,
                                 interval=settings.outbox_interval_s, on_published=metrics.record_outbox)
        config = ConsumerConfig(topology.RULE_ENGINE_QUEUE.name, batch_size=settings.batch_size,
                                batch_wait=settings.batch_wait, prefetch=settings.prefetch,
                                max_attempts=settings.max_attempts)
        self.consumer = BatchConsumer(settings.amqp_url, config, make_handler(self._handle), name="rule-engine")
        self.listener = RulesListener(settings.amqp_url, self.service.rules_changed)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _handle(self, inputs):
        changes = self.api.handle(inputs)
        if changes.outbox:
            self.relay.wake()
        return changes

    def start(self) -> RuleEngineApp:
        """Start every loop on daemon threads."""
        self.publisher.start()
        self.relay.start()
        self.listener.start()
        for target, name in ((self.consumer.run, "consumer"), (self._sweep_loop, "sweeper")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval_s):
            try:
                if self.api.sweep().outbox:
                    self.relay.wake()
            except Unavailable as exc:
                log.warning("sweep: dependency unavailable", extra={"error": str(exc)})
            except Exception:  # the sweeper must survive a bad round
                log.exception("sweep failed")

    def ready(self) -> bool:
        """Consuming, publishing and the database answers."""
        return self.consumer.connected.is_set() and self.publisher.ready and self.db.ping()

    def stop(self) -> None:
        """Finish the current batch, publish what is committed, close connections."""
        self._stop.set()
        self.consumer.stop()
        for thread in self._threads:
            thread.join(15)
        self.listener.stop()
        self.relay.stop()
        self.publisher.stop()
        self.db.close()
