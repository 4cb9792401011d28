"""Decoding of broker deliveries into IngestMessages, shared by every writer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from iothub.contract.ingest import IngestMessage
from iothub.errors import Rejected

SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class DeliveryLike(Protocol):
    """What writers read from a delivery (iothub.rabbit.Delivery satisfies it)."""

    body: bytes
    headers: dict
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Decoded:
    """An IngestMessage with its parsed device timestamp and its index in the batch."""

    index: int
    msg: IngestMessage
    ts: datetime


def parse_time(value: str) -> datetime:
    """Parse an ISO 8601 timestamp with an offset into UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value[:40]!r}")
    return parsed.astimezone(UTC)


def decode_batch(batch: Sequence[DeliveryLike]) -> tuple[list[Decoded], dict[int, Rejected]]:
    """Decode every delivery; undecodable ones come back as Rejected by index."""
    good: list[Decoded] = []
    bad: dict[int, Rejected] = {}
    for index, delivery in enumerate(batch):
        try:
            msg = IngestMessage.decode(delivery.body)
            ts = parse_time(msg.ts)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            bad[index] = Rejected("undecodable", f"not an IngestMessage: {exc}"[:500])
            continue
        if not SAFE_NAME.match(msg.device_id) or not SAFE_NAME.match(msg.msg_type):
            bad[index] = Rejected("bad_value", "device_id or msg_type is not a safe name")
            continue
        good.append(Decoded(index, msg, ts))
    return good, bad
