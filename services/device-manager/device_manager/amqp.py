"""RabbitMQ adapter: a confirming publisher for rule-change notices and dead-letter replay.

The connection is opened on first use, so each gunicorn worker (forked after create_app) gets its own.
"""

from __future__ import annotations

import logging
import threading

import orjson

from iothub import topology
from iothub.errors import Unavailable

log = logging.getLogger("device_manager.amqp")
PUBLISH_TIMEOUT_S = 5.0  # broker confirm
START_TIMEOUT_S = 3.0  # first channel, once per worker
READY_WAIT_S = 1.0  # a reconnecting publisher, per request


class AmqpPublisher:
    """Publishes with a broker confirm; the underlying ConfirmPublisher starts lazily, once."""

    def __init__(self, url: str, name: str = "device-manager"):
        self.url = url
        self.name = name
        self._publisher = None
        self._lock = threading.Lock()

    def _started(self):
        if self._publisher is None:
            with self._lock:
                if self._publisher is None:
                    from iothub.rabbit import ConfirmPublisher

                    publisher = ConfirmPublisher(self.url, name=self.name)
                    try:
                        publisher.start(timeout=START_TIMEOUT_S)
                    except Unavailable as exc:  # its I/O thread keeps reconnecting with backoff; keep the instance
                        log.warning("RabbitMQ publisher not ready", extra={"error": str(exc)})
                    self._publisher = publisher
        return self._publisher

    def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None,
                headers: dict | None = None, content_type: str = "application/json") -> None:
        """Publish and wait for the broker's confirm; raises Unavailable when RabbitMQ does not take it."""
        publisher = self._started()
        if not publisher.wait_ready(READY_WAIT_S):
            raise Unavailable("RabbitMQ: no open channel")
        ok = publisher.publish_wait(exchange, routing_key, body, timeout=PUBLISH_TIMEOUT_S, message_id=message_id,
                                    headers=headers, content_type=content_type)
        if not ok:
            raise Unavailable("RabbitMQ did not confirm the message")

    def notify_rules_changed(self, rule_id: str, change: str) -> bool:
        """Tell rule engines to reload (fanout iot.rules); the change is committed already, so failure only logs:
        the rule engine also reloads every 30 s."""
        body = orjson.dumps({"rule_id": str(rule_id), "change": change})
        try:
            self.publish(topology.RULES_EXCHANGE, "", body)
            return True
        except Unavailable as exc:
            log.warning("rule change notice not published", extra={"rule_id": str(rule_id), "error": str(exc)})
            return False

    def close(self) -> None:
        """Stop the publisher if it was started."""
        with self._lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.stop()
