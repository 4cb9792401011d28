"""RabbitMQ topology: every exchange, queue and routing key, imported by producers and consumers alike."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

# Exchanges
INGEST_EXCHANGE = "iot.ingest"  # direct: bridged, not yet sequenced device messages, key "p{partition}"
# topic: accepted device messages, key "{msg_type}.{device_type}.{device_id}.p{partition}"
TELEMETRY_EXCHANGE = "iot.telemetry"
# topic: collector-derived notices, key "{kind}.{device_type}.{device_id}.p{partition}"
NOTICES_EXCHANGE = "iot.notices"
EVENTS_EXCHANGE = "iot.events"  # topic: event changes, key "{severity}.{rule_kind}.{rule_id}"
RULES_EXCHANGE = "iot.rules"  # fanout: "rules changed" notices for rule-engine caches
DEAD_LETTER_EXCHANGE = "iot.dead_letters"  # fanout: parked messages with their reason

# Dead-letter headers, set by the consumer policy and by the collector's validation.
DL_REASON = "x-iothub-reason"
DL_DETAIL = "x-iothub-detail"
DL_SOURCE = "x-iothub-source"  # queue or ingest path that parked it
DL_EXCHANGE = "x-iothub-original-exchange"
DL_ROUTING_KEY = "x-iothub-original-routing-key"


def dead_letter_headers(reason: str, detail: str, source: str, *, exchange: str | None = None,
                        routing_key: str = "") -> dict[str, str]:
    """The reason headers a parked message carries (the dead-letter store reads them back)."""
    headers = {DL_REASON: reason, DL_DETAIL: detail, DL_SOURCE: source, DL_ROUTING_KEY: routing_key}
    if exchange is not None:
        headers[DL_EXCHANGE] = exchange
    return headers


def telemetry_key(msg_type: str, device_type: str, device_id: str, partition: int) -> str:
    """Routing key for an accepted device message; the last word lets partitioned consumers bind their devices."""
    return f"{msg_type}.{device_type}.{device_id}.{partition_key(partition)}"


# Last word of a bundle's routing key: never a device id (iothub.rabbit.bundle; device ids are [A-Za-z0-9_-]).
BUNDLE_WORD = "~bundle"


def bundle_key(msg_type: str, device_type: str, partition: int) -> str:
    """Routing key of a bundle of accepted device messages of one type, device type and partition."""
    return f"{msg_type}.{device_type}.{BUNDLE_WORD}.{partition_key(partition)}"


def notice_key(kind: str, device_type: str, device_id: str, partition: int) -> str:
    """Routing key for a collector notice such as a sequence gap."""
    return f"{kind}.{device_type}.{device_id}.{partition_key(partition)}"


def event_key(severity: str, rule_kind: str, rule_id: str) -> str:
    """Routing key for an event change."""
    return f"{severity}.{rule_kind}.{rule_id}"


DEFAULT_PARTITIONS = 8  # INGEST_PARTITIONS unless configured; every stage must use the same number


def partition_of(device_id: str, partitions: int) -> int:
    """The ingest partition that sequences a device: stable across processes and restarts (unlike hash())."""
    return zlib.crc32(device_id.encode()) % partitions


def partition_key(partition: int) -> str:
    """Routing key (and bundle key) of an ingest partition on INGEST_EXCHANGE."""
    return f"p{partition}"


# A message returned this many times (consumer crashes, restarts, nacks) is dead-lettered by the broker itself, so
# a poison message cannot loop even when it kills its consumer before the consumer's own attempt count is kept.
DELIVERY_LIMIT = 10
# Ingest partitions requeue a batch while a downstream queue refuses it (with backoff up to 15 s): allow minutes.
PARTITION_DELIVERY_LIMIT = 50


def quorum(*, delivery_limit: int | None = DELIVERY_LIMIT, single_active: bool = False) -> dict:
    """Arguments of a replicated quorum queue whose delivery count survives restarts (it lives in the Raft log)."""
    args: dict = {"x-queue-type": "quorum"}
    if delivery_limit is not None:
        args.update({"x-delivery-limit": delivery_limit, "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE})
    if single_active:
        args["x-single-active-consumer"] = True  # exactly one replica owns the partition; the broker fails over
    return args


@dataclass(frozen=True)
class Queue:
    """A durable queue and the (exchange, routing key) bindings that feed it."""

    name: str
    bindings: tuple[tuple[str, str], ...]
    arguments: dict = field(default_factory=quorum)


def ingest_queue(partition: int) -> Queue:
    """The queue of one ingest partition: quorum, single active consumer, bounded deliveries."""
    return Queue(f"ingest.p{partition}", ((INGEST_EXCHANGE, partition_key(partition)),),
                 quorum(delivery_limit=PARTITION_DELIVERY_LIMIT, single_active=True))


def rule_engine_queue(partition: int) -> Queue:
    """The rule engine's queue of one partition: the accepted messages and notices of that partition's devices."""
    # The delivery limit of the ingest partitions: a database outage requeues batches with backoff for minutes.
    key = f"*.*.*.{partition_key(partition)}"
    return Queue(f"rule-engine.{partition_key(partition)}", ((TELEMETRY_EXCHANGE, key), (NOTICES_EXCHANGE, key)),
                 quorum(delivery_limit=PARTITION_DELIVERY_LIMIT, single_active=True))


def members_queue(group: str) -> Queue:
    """A queue every replica of a partitioned group holds a consumer on (nothing is ever published to it): its
    consumer count is the number of live replicas, from which each computes its share (iothub.rabbit.partitioned)."""
    return Queue(f"{group}.members", (), {"x-queue-type": "classic", "x-queue-version": 2})


SERIES_QUEUE = Queue("collector.series", ((TELEMETRY_EXCHANGE, "telemetry.#"),))
ARCHIVE_QUEUE = Queue("collector.archive", ((TELEMETRY_EXCHANGE, "#"),))
# Seen notices (duplicates, dead-lettered messages) keep a device's last_seen and online status true.
STATE_QUEUE = Queue("collector.state", ((TELEMETRY_EXCHANGE, "#"), (NOTICES_EXCHANGE, "seen.#")))
# No delivery limit on the dead-letter store's own queue: it would dead-letter into itself.
DEAD_LETTER_QUEUE = Queue("iot.dead_letters", ((DEAD_LETTER_EXCHANGE, ""),), quorum(delivery_limit=None))
NOTIFIER_QUEUE = Queue("notifier.events", ((EVENTS_EXCHANGE, "#"),))

EXCHANGES = {
    INGEST_EXCHANGE: "direct",
    TELEMETRY_EXCHANGE: "topic",
    NOTICES_EXCHANGE: "topic",
    EVENTS_EXCHANGE: "topic",
    RULES_EXCHANGE: "fanout",
    DEAD_LETTER_EXCHANGE: "fanout",
}
QUEUES = (SERIES_QUEUE, ARCHIVE_QUEUE, STATE_QUEUE, DEAD_LETTER_QUEUE, NOTIFIER_QUEUE)

# -- metering (issue 13): the energy writer integrates power samples of every telemetry datagram.
ENERGY_QUEUE = Queue("collector.energy", ((TELEMETRY_EXCHANGE, "telemetry.#"),))
QUEUES = (*QUEUES, ENERGY_QUEUE)


def declare(channel, partitions: int = 0) -> None:
    """Declare every exchange, queue and binding on a pika BlockingChannel (idempotent); `partitions` > 0 also
    declares that many ingest and rule-engine partitions (publishers of the ingest exchange and the sequencer must,
    or a message to a partition not declared yet would be confirmed and dropped)."""
    for name, kind in EXCHANGES.items():
        channel.exchange_declare(exchange=name, exchange_type=kind, durable=True)
    for queue in (*QUEUES, *partition_queues(partitions)):
        declare_queue(channel, queue)


def partition_queues(partitions: int) -> list[Queue]:
    """The ingest and rule-engine queues of that many partitions."""
    return [make(p) for p in range(partitions) for make in (ingest_queue, rule_engine_queue)]


def declare_queue(channel, queue: Queue) -> None:
    """Declare one durable queue and its bindings (the exchanges must exist)."""
    channel.queue_declare(queue=queue.name, durable=True, arguments=queue.arguments)
    for exchange, key in queue.bindings:
        channel.queue_bind(queue=queue.name, exchange=exchange, routing_key=key)
