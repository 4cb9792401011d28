"""Event and dead-letter use cases: people acknowledge and resolve events; admins replay or discard dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from device_manager.service.errors import Conflict, NotFound
from device_manager.service.pagination import Page, PageRequest


@dataclass(frozen=True)
class Transition:
    """Outcome of an acknowledge/resolve: the updated row, or the state that made it impossible."""

    event: dict[str, Any] | None
    found: bool
    current_status: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the transition happened."""
        return self.event is not None


class EventStore(Protocol):
    """Where events live (the rule engine writes them)."""

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""

    def get(self, event_id) -> dict[str, Any] | None:
        """One event."""

    def acknowledge(self, event_id, who: str) -> Transition:
        """open -> acknowledged."""

    def resolve(self, event_id, who: str, comment: str | None) -> Transition:
        """open or acknowledged -> resolved."""


class EventService:
    """Events raised by the rule engine (open -> acknowledged -> resolved)."""

    def __init__(self, events: EventStore):
        self.events = events

    def list(self, req: PageRequest) -> Page:
        """A page of events."""
        return self.events.list(req)

    def get(self, event_id) -> dict[str, Any]:
        """One event; NotFound when unknown."""
        event = self.events.get(event_id)
        if event is None:
            raise NotFound("Event not found")
        return event

    def acknowledge(self, event_id, actor: str) -> dict[str, Any]:
        """Acknowledge an open event; Conflict when it is not open."""
        return _done(self.events.acknowledge(event_id, actor), "acknowledged")

    def resolve(self, event_id, actor: str, comment: str | None) -> dict[str, Any]:
        """Resolve an open or acknowledged event; Conflict when already resolved."""
        return _done(self.events.resolve(event_id, actor, comment), "resolved")


def _done(result: Transition, target: str) -> dict[str, Any]:
    if not result.found:
        raise NotFound("Event not found")
    if not result.ok:
        raise Conflict(f"An event that is {result.current_status} cannot be {target}",
                       {"status": result.current_status, "target": target})
    return result.event
