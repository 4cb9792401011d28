"""The ingest service's ports: what it needs from the broker, the device registry and its state store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from collector.directory import Entry
from collector.seq import DeviceSeq


class Publisher(Protocol):
    """Publishes with confirms (iothub.rabbit.ConfirmPublisher)."""

    def publish(self, exchange: str, routing_key: str, body: bytes, on_confirm: Callable[[bool], None], *,
                message_id: str | None = None, headers: dict | None = None, bundle: str | None = None,
                order: str | None = None) -> None:
        """Queue a message; on_confirm(True) once the broker has it; `bundle` lets neighbours share a message."""


class Directory(Protocol):
    """Known devices: device_id -> device type, HTTP token hash and registration."""

    def lookup(self, device_id: str) -> Entry | None:
        """The device's entry, None when the device is unknown."""

    def cached(self, device_id: str) -> Entry | None:
        """The device's entry when known without asking the database."""

    def device_type(self, device_id: str) -> str | None:
        """The device's type name, None when the device is unknown."""

    def token_hash(self, device_id: str) -> str | None:
        """sha256 hex of the device's HTTP ingest token, if it has one."""


class SeqStore(Protocol):
    """Persistence of sequence state (device_seq_tracking)."""

    def load(self, device_id: str) -> DeviceSeq | None:
        """The stored state of one device."""

    def load_all(self) -> dict[str, DeviceSeq]:
        """Every stored state."""

    def save(self, rows: list[DeviceSeq]) -> None:
        """Upsert many states in one transaction."""
