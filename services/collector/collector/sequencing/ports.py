"""The sequencer's state-store port; it publishes through collector.ports.Publisher."""

from __future__ import annotations

from typing import Protocol

from collector.sequencing.seq import DeviceSeq


class SeqStore(Protocol):
    """Persistence of sequence state (device_seq_tracking)."""

    def load(self, device_id: str) -> DeviceSeq | None:
        """The stored state of one device."""

    def load_many(self, device_ids: list[str]) -> dict[str, DeviceSeq]:
        """The stored states of these devices (those that have one), in one query."""

    def save(self, rows: list[DeviceSeq]) -> None:
        """Upsert many states in one transaction."""
