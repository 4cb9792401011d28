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
from rule_engine.leader import Leadership
from rule_engine.logged import LoggingMiddleware
from rule_engine.relay import OutboxRelay
from rule_engine.repository import PostgresStore
from rule_engine.service import RuleService
from rule_engine.settings import Settings

log = logging.getLogger(__name__)


class RuleEngineApp:
    """Outbox relay on every replica; the leader (advisory lock) also runs consumer, rules listener and sweeper."""

    # In-memory rule state is only correct while one process evaluates, so replicas beyond the first stand by and
    # take over (loading the state from PostgreSQL) when the leader's lock connection goes away; a leader that lost
    # its lock stops consuming and competes again as a standby.

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.database_url, maxconn=settings.db_pool_size, application_name="rule-engine")
        self.leadership = Leadership(settings.database_url)
        self.publisher = ConfirmPublisher(settings.amqp_url, name="rule-engine-outbox")
        self.relay = OutboxRelay(self.db, self.publisher, batch=settings.outbox_batch,
                                 interval=settings.outbox_interval_s, on_published=metrics.record_outbox,
                                 retention_s=settings.outbox_retention_h * 3600)
        self._config = ConsumerConfig(topology.RULE_ENGINE_QUEUE.name, batch_size=settings.batch_size,
                                      batch_wait=settings.batch_wait, prefetch=settings.prefetch,
                                      max_attempts=settings.max_attempts)
        self.consumer = BatchConsumer(settings.amqp_url, self._config, make_handler(self._handle), name="rule-engine")
        self.service: RuleService | None = None
        self.api = None
        self.listener: RulesListener | None = None
        self.leading = threading.Event()
        self.lost = threading.Event()  # set once the leadership was lost (the process then stands by again)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _handle(self, inputs):
        changes = self.api.handle(inputs)
        if changes.outbox:
            self.relay.wake()
        return changes

    def start(self) -> RuleEngineApp:
        """Start the relay, then compete for leadership on a daemon thread."""
        self.publisher.start()
        self.relay.start()
        self._spawn(self._lead, "leader")
        return self

    def _spawn(self, target, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def _lead(self) -> None:
        while not self._stop.is_set():
            if not self.leadership.try_acquire():
                self._stop.wait(2.0)
                continue
            if self._serve() or self._stop.wait(5.0):  # after a loss, give the standbys the first chance
                return

    def _load_service(self) -> RuleService | None:
        s = self.settings
        store = PostgresStore(self.db, fence=lambda: (self.leadership.key, self.leadership.pid))
        while not self._stop.is_set():
            try:
                return RuleService(store, min_reload_s=s.rules_min_reload_s, max_rule_age_s=s.rules_max_age_s,
                                   persist_seen_s=s.persist_seen_s, offline_max_lag_s=s.offline_max_lag_s,
                                   intervals_refresh_s=s.config_refresh_s)
            except Unavailable as exc:
                log.warning("loading state failed, retrying", extra={"error": str(exc)})
                self._stop.wait(2.0)
        return None

    def _serve(self) -> bool:
        """Evaluate while the lock is ours; True when asked to stop, False when the lock was lost."""
        log.info("rule engine is the leader; loading rules and state")
        service = self._load_service()
        if service is None:
            return True
        self.service, self.api = service, LoggingMiddleware(metrics.MetricsMiddleware(service))
        self.consumer = BatchConsumer(self.settings.amqp_url, self._config, make_handler(self._handle),
                                      name="rule-engine")
        self.listener = RulesListener(self.settings.amqp_url, service.rules_changed).start()
        term = threading.Event()
        threads = [self._spawn(self.consumer.run, "consumer"), self._spawn(lambda: self._sweep_loop(term), "sweeper")]
        self.leading.set()
        while not self._stop.wait(1.0):
            if not self.leadership.held():
                log.error("rule engine lost its leader lock; standing by")
                self.leading.clear()
                self.lost.set()
                term.set()
                self.consumer.stop()
                self.listener.stop()
                for thread in threads:
                    thread.join(15)
                self.leadership.release()
                return False
        term.set()
        return True

    def _sweep_loop(self, term: threading.Event) -> None:
        while not self._stop.wait(self.settings.sweep_interval_s) and not term.is_set():
            try:
                if self.api.sweep().outbox:
                    self.relay.wake()
            except Unavailable as exc:
                log.warning("sweep: dependency unavailable", extra={"error": str(exc)})
            except Exception:  # the sweeper must survive a bad round
                log.exception("sweep failed")

    def ready(self) -> bool:
        """The database answers, the relay can publish, and a leader is consuming (a standby is ready too)."""
        leader_ok = self.consumer.connected.is_set() if self.leading.is_set() else True
        return leader_ok and self.publisher.ready and self.db.ping()

    def stop(self) -> None:
        """Finish the current batch, publish what is committed, release the lock, close connections."""
        self._stop.set()
        self.consumer.stop()
        for thread in self._threads:
            thread.join(15)
        if self.listener is not None:
            self.listener.stop()
        self.leadership.release()
        self.relay.stop()
        self.publisher.stop()
        self.db.close()
