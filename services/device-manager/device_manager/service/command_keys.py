"""Command-key use cases: issue a key per device at registration, rotate it, say which key a device has.

A key leaves the service only in the answer that created it (hex, 64 digits); it is stored encrypted (KeyCipher).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from device_manager.service.errors import NotFound


class KeyCipher(Protocol):
    """Makes keys and encrypts them for storage, bound to the device_id."""

    def new_key(self) -> bytes:
        """A fresh random key."""

    def wrap(self, device_id: str, key: bytes) -> bytes:
        """The stored form of one device's key."""


class KeyStore(Protocol):
    """Where wrapped keys live (one per device)."""

    def put_many(self, rows: Sequence[tuple[Any, bytes]]) -> None:
        """Store (device UUID, wrapped key) pairs of new devices."""

    def replace(self, device_uuid, wrapped: bytes) -> dict[str, Any]:
        """Store a device's new key: {version, created_at, rotated_at}."""

    def identity(self, device_uuid) -> str | None:
        """The device's MQTT id, None when no such device."""

    def info(self, device_uuid) -> dict[str, Any] | None:
        """{device_id, version, created_at, rotated_at} (version None: no key); None when no such device."""


class CommandKeyService:
    """Per-device command-signing keys."""

    def __init__(self, store: KeyStore, cipher: KeyCipher):
        self.store = store
        self.cipher = cipher

    def issue(self, devices: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Give each newly registered device a key; the devices with `command_key` added (shown this once)."""
        keys = [self.cipher.new_key() for _ in devices]
        self.store.put_many([(d["id"], self.cipher.wrap(d["device_id"], k)) for d, k in zip(devices, keys,
                                                                                            strict=True)])
        return [{**d, "command_key": k.hex()} for d, k in zip(devices, keys, strict=True)]

    def rotate(self, device_uuid) -> dict[str, Any]:
        """Replace the device's key: {device_id, command_key, version, ...}; the old key stops working at once."""
        device_id = self.store.identity(device_uuid)
        if device_id is None:
            raise NotFound("Device not found")
        key = self.cipher.new_key()
        stored = self.store.replace(device_uuid, self.cipher.wrap(device_id, key))
        return {"device_id": device_id, "command_key": key.hex(), **stored}

    def info(self, device_uuid) -> dict[str, Any]:
        """Which key the device has, never the key."""
        found = self.store.info(device_uuid)
        if found is None:
            raise NotFound("Device not found")
        return {**found, "has_command_key": found["version"] is not None}
