"""Command-key crypto adapters: AES-GCM wrapping under COMMAND_KEY_KEK, and the HMAC-SHA256 command signer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from iothub import command_keys
from iothub.contract.signing import signature

log = logging.getLogger("device_manager.keyring")


class WrappedKeys(Protocol):
    """Looks up stored keys (repositories.command_keys.CommandKeyRepository)."""

    def wrapped_for(self, device_ids: Sequence[str]) -> dict[str, bytes]:
        """device_id -> wrapped key."""


class KekCipher:
    """KeyCipher over iothub.command_keys with the deployment's key-encryption key."""

    def __init__(self, kek_text: str):
        self._kek = command_keys.Kek(command_keys.parse_kek(kek_text))

    def new_key(self) -> bytes:
        """32 random bytes."""
        return command_keys.new_key()

    def wrap(self, device_id: str, key: bytes) -> bytes:
        """Encrypt for storage."""
        return self._kek.wrap(device_id, key)

    def unwrap(self, device_id: str, blob: bytes) -> bytes:
        """Decrypt a stored key (KeyWrapError when it does not belong to this KEK and device)."""
        return self._kek.unwrap(device_id, blob)


class HmacSigner:
    """Signer: each device's key from the store, decrypted per call (a rotation applies to the next command)."""

    def __init__(self, keys: WrappedKeys, cipher: KekCipher):
        self.keys = keys
        self.cipher = cipher

    def sign_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[str | None]:
        """HMAC-SHA256 signatures in order; None where a device has no usable key."""
        wrapped = self.keys.wrapped_for(sorted({device_id for device_id, _ in items}))
        keys: dict[str, bytes | None] = {}
        for device_id, blob in wrapped.items():
            try:
                keys[device_id] = self.cipher.unwrap(device_id, blob)
            except command_keys.KeyWrapError as exc:
                log.error("command key unusable", extra={"device_id": device_id, "error": str(exc)})
        return [signature(keys[d], d, body) if keys.get(d) else None for d, body in items]
