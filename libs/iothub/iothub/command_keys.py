"""At-rest form of per-device command keys (AES-256-GCM under COMMAND_KEY_KEK, bound to the device_id).

Shared by the device manager (provisioning, signing) and the simulator's provisioning, which writes the same rows.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from iothub.contract.signing import KEY_BYTES

FORMAT = b"\x01"  # version byte of the stored blob: 0x01 || 12-byte nonce || ciphertext+tag
NONCE_BYTES = 12


class KeyWrapError(ValueError):
    """A wrong KEK, a damaged blob, or a blob of another device."""


def parse_kek(text: str) -> bytes:
    """COMMAND_KEY_KEK: 32 bytes as base64 (standard or URL-safe) or 64 hex digits."""
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.urlsafe_b64decode(_padded(text.replace("+", "-")
                                                                                           .replace("/", "_")))
    except (ValueError, binascii.Error) as exc:
        raise KeyWrapError("COMMAND_KEY_KEK must be 32 bytes, base64 or hex") from exc
    if len(raw) != 32:
        raise KeyWrapError(f"COMMAND_KEY_KEK must be 32 bytes, got {len(raw)}")
    return raw


def new_key() -> bytes:
    """A fresh random command key."""
    return os.urandom(KEY_BYTES)


class Kek:
    """The key-encryption key, its AES-GCM context built once (building it costs ten times a decryption)."""

    def __init__(self, raw: bytes):
        self._aead = AESGCM(raw)

    def wrap(self, device_id: str, key: bytes) -> bytes:
        """Encrypt one device's key for storage."""
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT + nonce + self._aead.encrypt(nonce, key, device_id.encode())

    def unwrap(self, device_id: str, blob: bytes) -> bytes:
        """Decrypt a stored key; KeyWrapError when the KEK, the device or the blob does not match."""
        blob = bytes(blob)
        if blob[:1] != FORMAT or len(blob) < 1 + NONCE_BYTES + 16:
            raise KeyWrapError("unknown command key format")
        try:
            return self._aead.decrypt(blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:], device_id.encode())
        except InvalidTag as exc:
            raise KeyWrapError("command key does not decrypt (wrong COMMAND_KEY_KEK or device)") from exc


def wrap(kek: bytes, device_id: str, key: bytes) -> bytes:
    """Encrypt one device's key for storage."""
    return Kek(kek).wrap(device_id, key)


def unwrap(kek: bytes, device_id: str, blob: bytes) -> bytes:
    """Decrypt a stored key (KeyWrapError when it does not belong to this KEK and device)."""
    return Kek(kek).unwrap(device_id, blob)


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)
