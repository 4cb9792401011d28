"""Wiring: adapters, the decorated service, the consumer and the delivery scheduler, started and stopped together."""

from __future__ import annotations

import logging
import threading

from iothub import topology
from iothub.db import Database
from iothub.rabbit import BatchConsumer, ConsumerConfig
from notifier import metrics
from notifier.channels.email import EmailNotifier
from notifier.channels.log import LogNotifier
from notifier.channels.webhook import WebhookNotifier
from notifier.consumer import make_handler
from notifier.dispatcher import Dispatcher
from notifier.logged import LoggingMiddleware
from notifier.policy import RetryPolicy
from notifier.repository import PostgresRepository
from notifier.service import NotificationService, Notifier
from notifier.settings import Settings

log = logging.getLogger(__name__)


def build_notifiers(settings: Settings) -> dict[str, Notifier]:
    """One Notifier per configured channel: log and webhook always, email when SMTP_HOST is set."""
    notifiers: dict[str, Notifier] = {"log": LogNotifier(), "webhook": WebhookNotifier(settings.webhook_timeout)}
    if settings.smtp_host:
        notifiers["email"] = EmailNotifier(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                                           username=settings.smtp_username, password=settings.smtp_password,
                                           tls=settings.smtp_tls, timeout=settings.smtp_timeout)
    return notifiers


class App:
    """The running notifier: a consumer thread and a scheduler thread sharing one decorated service."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # Workers, scheduler and consumer each hold a connection at most briefly.
        self.db = Database(settings.database_url, maxconn=settings.workers + 4, application_name="notifier")
        notifiers = build_notifiers(settings)
        self.channels = sorted(notifiers)
        service = NotificationService(
            PostgresRepository(self.db), notifiers,
            RetryPolicy(settings.max_attempts, settings.backoff_base, settings.backoff_cap),
            per_target_limit=settings.per_target_limit, lease_seconds=settings.lease_seconds)
        self.service = metrics.MetricsMiddleware(LoggingMiddleware(service))
        self.dispatcher = Dispatcher(self.service, workers=settings.workers, poll_interval=settings.poll_interval,
                                     on_pending=metrics.set_pending)
        metrics.IN_FLIGHT.set_function(self.dispatcher.in_flight)
        config = ConsumerConfig(topology.NOTIFIER_QUEUE.name, batch_size=settings.batch_size,
                                batch_wait=settings.batch_wait, prefetch=max(100, settings.batch_size * 2))
        self.consumer = BatchConsumer(settings.amqp_url, config, make_handler(self.service, self.dispatcher.wake),
                                      name="notifier")
        self._threads: list[threading.Thread] = []

    def start(self) -> App:
        """Start consuming and delivering on daemon threads."""
        for name, target in (("dispatcher", self.dispatcher.run), ("consumer", self.consumer.run)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def ready(self) -> bool:
        """Consuming from RabbitMQ and reaching PostgreSQL."""
        return self.consumer.connected.is_set() and self.dispatcher.healthy.is_set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop consuming (finishing the current batch) and claiming; running attempts are still recorded."""
        self.consumer.stop()
        self.dispatcher.stop()
        for thread in self._threads:
            thread.join(timeout)
        self.db.close()
        log.info("notifier stopped")
