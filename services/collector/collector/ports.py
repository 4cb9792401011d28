"""The port both stages publish through: RabbitMQ with publisher confirms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Publisher(Protocol):
    """Publishes with confirms (iothub.rabbit.ConfirmPublisher)."""

    def publish(self, exchange: str, routing_key: str, body: bytes, on_confirm: Callable[[bool], None], *,
                message_id: str | None = None, headers: dict | None = None, bundle: str | None = None,
                order: str | None = None) -> None:
        """Queue a message; on_confirm(True) once the broker has it; `bundle` lets neighbours share a message."""
