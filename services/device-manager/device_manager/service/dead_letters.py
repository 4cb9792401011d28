"""Dead-letter use cases (admins): inspect, replay to the original exchange, or discard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from device_manager.service.errors import Conflict, NotFound
from device_manager.service.pagination import Page, PageRequest
from iothub import topology

# Headers the dead-letter policy added; the replayed message carries the original's own headers only.
DL_HEADERS = {topology.DL_REASON, topology.DL_DETAIL, topology.DL_SOURCE, topology.DL_EXCHANGE,
              topology.DL_ROUTING_KEY, "x-death", "x-first-death-exchange", "x-first-death-queue",
              "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"}
REPLAYED_FROM = "x-iothub-replayed-from"


@dataclass(frozen=True)
class Handled:
    """Outcome of replay/discard: the updated row, or why nothing changed."""

    row: dict[str, Any] | None
    found: bool
    current_status: str | None = None
    no_exchange: bool = False


class DeadLetterStore(Protocol):
    """Where parked messages live."""

    def list(self, req: PageRequest) -> Page:
        """A filtered page with body previews."""

    def get(self, dl_id) -> dict[str, Any] | None:
        """One dead letter."""

    def replay(self, dl_id, who: str, publish: Callable[[dict[str, Any]], None]) -> Handled:
        """Lock a parked letter, publish it (raising keeps it parked), mark it replayed."""

    def discard(self, dl_id, who: str) -> Handled:
        """Mark a parked letter discarded."""


class MessagePublisher(Protocol):
    """Publishes to RabbitMQ with a broker confirm."""

    def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None,
                headers: dict | None = None, content_type: str = "application/json") -> None:
        """Raises Unavailable when the broker does not take it."""


class DeadLetterService:
    """Messages parked by the pipeline."""

    def __init__(self, letters: DeadLetterStore, publisher: MessagePublisher):
        self.letters = letters
        self.publisher = publisher

    def list(self, req: PageRequest) -> Page:
        """A page of dead letters."""
        return self.letters.list(req)

    def get(self, dl_id) -> dict[str, Any]:
        """One dead letter; NotFound when unknown."""
        row = self.letters.get(dl_id)
        if row is None:
            raise NotFound("Dead letter not found")
        return row

    def replay(self, dl_id, actor: str) -> dict[str, Any]:
        """Republish the body to its original exchange and routing key, then mark it replayed."""
        return _done(self.letters.replay(dl_id, actor, self._republish), "replayed")

    def discard(self, dl_id, actor: str) -> dict[str, Any]:
        """Mark a parked dead letter discarded."""
        return _done(self.letters.discard(dl_id, actor), "discarded")

    def _republish(self, row: dict[str, Any]) -> None:
        headers = {k: v for k, v in (row["headers"] or {}).items() if k not in DL_HEADERS}
        headers[REPLAYED_FROM] = str(row["id"])
        self.publisher.publish(row["exchange"], row["routing_key"] or "", row["body"], message_id=row["message_id"],
                               headers=headers, content_type=headers.pop("content-type", None) or "application/json")


def _done(result: Handled, target: str) -> dict[str, Any]:
    if not result.found:
        raise NotFound("Dead letter not found")
    if result.no_exchange:
        raise Conflict("This message was rejected at the device edge (MQTT/HTTP) and never reached an exchange; "
                       "it cannot be replayed. Discard it; the device must resend.", {"exchange": None})
    if result.row is None:
        raise Conflict(f"A dead letter that is {result.current_status} cannot be {target}",
                       {"status": result.current_status, "target": target})
    return result.row
