"""Dead-letter recorder: parks every message of iot.dead_letters in a table operators can list and replay."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson

from collector.writers import metrics
from collector.writers.decode import DeliveryLike
from iothub import topology
from iothub.errors import Rejected

WRITER = "dead_letters"
BROKER_REASON = "x-first-death-reason"  # set by RabbitMQ when it dead-letters a message itself


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One parked message as stored."""

    message_id: str
    source: str
    reason: str
    detail: str
    exchange: str | None
    routing_key: str | None
    headers: dict[str, Any]
    body: bytes


class DeadLetterStore(Protocol):
    """Inserts dead letters, ignoring message ids it holds parked; raises Unavailable when down."""

    def insert(self, letters: Sequence[DeadLetter]) -> int:
        """Store new letters; returns how many were new."""


def _clean_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "\ufffd")  # PostgreSQL text and jsonb cannot hold NUL


def to_json_value(value: Any) -> Any:
    """AMQP header values (bytes, Decimal, datetime, nested tables) as plain JSON values."""
    if isinstance(value, dict):
        return {_clean_text(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _clean_text(value)


def to_dead_letter(delivery: DeliveryLike) -> DeadLetter:
    """Read the x-iothub-* headers; a message without an id gets a hash of body and headers."""
    headers = to_json_value(dict(delivery.headers or {}))
    message_id = delivery.message_id
    if not message_id:
        digest = hashlib.sha256(delivery.body)
        digest.update(orjson.dumps(headers, option=orjson.OPT_SORT_KEYS))
        message_id = f"sha256:{digest.hexdigest()}"

    def header(name: str) -> str | None:
        value = headers.get(name)
        return None if value is None else _clean_text(value)

    if header(topology.DL_REASON) is None and header(BROKER_REASON) is not None:
        return _parked_by_broker(_clean_text(message_id)[:200], headers, delivery.body)
    return DeadLetter(_clean_text(message_id)[:200], header(topology.DL_SOURCE) or "unknown",
                      header(topology.DL_REASON) or "unknown", (header(topology.DL_DETAIL) or "")[:4000],
                      header(topology.DL_EXCHANGE), header(topology.DL_ROUTING_KEY), headers, delivery.body)


def _parked_by_broker(message_id: str, headers: dict[str, Any], body: bytes) -> DeadLetter:
    """A message RabbitMQ itself dead-lettered (a quorum queue's delivery limit): its x-death headers say why."""
    reason = _clean_text(headers[BROKER_REASON])
    queue = _clean_text(headers.get("x-first-death-queue", "unknown"))
    deaths = headers.get("x-death") or [{}]
    keys = deaths[0].get("routing-keys") or [None]
    detail = (f"RabbitMQ dead-lettered it from {queue}: delivered too often without an ack (consumer crashes?)"
              if reason == "delivery_limit" else f"RabbitMQ dead-lettered it from {queue}: {reason}")
    exchange = headers.get("x-first-death-exchange")
    return DeadLetter(message_id, queue, reason, detail, None if exchange is None else _clean_text(exchange),
                      None if keys[0] is None else _clean_text(keys[0]), headers, body)


class DeadLetterRecorder:
    """Batch handler for iot.dead_letters; never rejects, since a rejection would loop back to this queue."""

    def __init__(self, store: DeadLetterStore):
        self._store = store

    def __call__(self, batch: Sequence[DeliveryLike]) -> dict[int, Rejected]:
        """Record a batch."""
        started = time.monotonic()
        letters = {}
        for delivery in batch:
            letter = to_dead_letter(delivery)
            letters.setdefault(letter.message_id, letter)
        try:
            new = self._store.insert(list(letters.values()))
        except Exception:
            metrics.STORE_ERRORS.labels(WRITER, "postgres").inc()
            raise
        metrics.WRITTEN.labels(WRITER, "rows").inc(new)
        metrics.SKIPPED.labels(WRITER, "duplicate").inc(len(batch) - new)
        metrics.BATCH_SIZE.labels(WRITER).observe(len(batch))
        metrics.BATCH_SECONDS.labels(WRITER).observe(time.monotonic() - started)
        return {}
