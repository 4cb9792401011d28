"""RabbitMQ topology: every exchange, queue and routing key, imported by producers and consumers alike."""

from __future__ import annotations

from dataclasses import dataclass, field

# Exchanges
TELEMETRY_EXCHANGE = "iot.telemetry"  # topic: accepted device messages, key "{msg_type}.{device_type}.{device_id}"
NOTICES_EXCHANGE = "iot.notices"  # topic: collector-derived notices, key "{kind}.{device_type}.{device_id}"
EVENTS_EXCHANGE = "iot.events"  # topic: event changes, key "{severity}.{rule_kind}.{rule_id}"
RULES_EXCHANGE = "iot.rules"  # fanout: "rules changed" notices for rule-engine caches
DEAD_LETTER_EXCHANGE = "iot.dead_letters"  # fanout: parked messages with their reason

# Dead-letter headers, set by the consumer policy and by the collector's validation.
DL_REASON = "x-iothub-reason"
DL_DETAIL = "x-iothub-detail"
DL_SOURCE = "x-iothub-source"  # queue or ingest path that parked it
DL_EXCHANGE = "x-iothub-original-exchange"
DL_ROUTING_KEY = "x-iothub-original-routing-key"


def telemetry_key(msg_type: str, device_type: str, device_id: str) -> str:
    """Routing key for an accepted device message."""
    return f"{msg_type}.{device_type}.{device_id}"


# Last word of a bundle's routing key: never a device id (iothub.rabbit.bundle; device ids are [A-Za-z0-9_-]).
BUNDLE_WORD = "~bundle"


def bundle_key(msg_type: str, device_type: str) -> str:
    """Routing key of a bundle of accepted device messages of one type and device type."""
    return f"{msg_type}.{device_type}.{BUNDLE_WORD}"


def notice_key(kind: str, device_type: str, device_id: str) -> str:
    """Routing key for a collector notice such as a sequence gap."""
    return f"{kind}.{device_type}.{device_id}"


def event_key(severity: str, rule_kind: str, rule_id: str) -> str:
    """Routing key for an event change."""
    return f"{severity}.{rule_kind}.{rule_id}"


@dataclass(frozen=True)
class Queue:
    """A durable queue and the (exchange, routing key) bindings that feed it."""

    name: str
    bindings: tuple[tuple[str, str], ...]
    arguments: dict = field(default_factory=lambda: {"x-queue-version": 2})


SERIES_QUEUE = Queue("collector.series", ((TELEMETRY_EXCHANGE, "telemetry.#"),))
ARCHIVE_QUEUE = Queue("collector.archive", ((TELEMETRY_EXCHANGE, "#"),))
# Seen notices (duplicates, dead-lettered messages) keep a device's last_seen and online status true.
STATE_QUEUE = Queue("collector.state", ((TELEMETRY_EXCHANGE, "#"), (NOTICES_EXCHANGE, "seen.#")))
DEAD_LETTER_QUEUE = Queue("iot.dead_letters", ((DEAD_LETTER_EXCHANGE, ""),))
RULE_ENGINE_QUEUE = Queue("rule-engine.input", ((TELEMETRY_EXCHANGE, "#"), (NOTICES_EXCHANGE, "#")))
NOTIFIER_QUEUE = Queue("notifier.events", ((EVENTS_EXCHANGE, "#"),))

EXCHANGES = {
    TELEMETRY_EXCHANGE: "topic",
    NOTICES_EXCHANGE: "topic",
    EVENTS_EXCHANGE: "topic",
    RULES_EXCHANGE: "fanout",
    DEAD_LETTER_EXCHANGE: "fanout",
}
QUEUES = (SERIES_QUEUE, ARCHIVE_QUEUE, STATE_QUEUE, DEAD_LETTER_QUEUE, RULE_ENGINE_QUEUE, NOTIFIER_QUEUE)

# -- metering (issue 13): the energy writer integrates power samples of every telemetry datagram.
ENERGY_QUEUE = Queue("collector.energy", ((TELEMETRY_EXCHANGE, "telemetry.#"),))
QUEUES = (*QUEUES, ENERGY_QUEUE)


def declare(channel) -> None:
    """Declare every exchange, queue and binding on a pika BlockingChannel (idempotent)."""
    for name, kind in EXCHANGES.items():
        channel.exchange_declare(exchange=name, exchange_type=kind, durable=True)
    for queue in QUEUES:
        channel.queue_declare(queue=queue.name, durable=True, arguments=queue.arguments)
        for exchange, key in queue.bindings:
            channel.queue_bind(queue=queue.name, exchange=exchange, routing_key=key)
