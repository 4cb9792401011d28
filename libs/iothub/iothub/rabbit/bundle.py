"""Bundles: several small messages carried by one AMQP message, so RabbitMQ persists and confirms them once.

A bundle is NDJSON (one part per line; parts are JSON documents, which never contain a raw newline) with
content type `application/x-ndjson`. Headers give each part its own message id and routing key. The publisher
routes a bundle by a key its parts share (the collector's is `{msg_type}.{device_type}.~bundle`, see
iothub.topology), so a binding that names one device receives that device's unbundled messages only. (RabbitMQ's
BCC header could route bundles by every part's key, but measured here it cost 25-36 us of broker CPU per key.)
A consumer keeps the parts whose key matches its bindings (`wanted`) and ignores the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CONTENT_TYPE = "application/x-ndjson"
IDS_HEADER = "x-iothub-bundle-ids"
KEYS_HEADER = "x-iothub-bundle-keys"
# Caps per bundle: a consumer's prefetch counts bundles, so these bound its memory (prefetch x MAX_BYTES).
MAX_PARTS = 64
MAX_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Part:
    """One message of a bundle."""

    body: bytes
    routing_key: str
    message_id: str | None


def pack(parts: Sequence[Part]) -> tuple[bytes, dict]:
    """Body and headers of a bundle."""
    headers = {IDS_HEADER: [p.message_id or "" for p in parts], KEYS_HEADER: [p.routing_key for p in parts]}
    return b"\n".join(p.body for p in parts), headers


def unpack(body: bytes, headers: dict | None) -> list[Part]:
    """The parts of a bundle; raises ValueError when the headers do not describe the body."""
    lines = body.split(b"\n")
    headers = headers or {}
    ids, keys = headers.get(IDS_HEADER), headers.get(KEYS_HEADER)
    if not isinstance(ids, list) or not isinstance(keys, list) or not len(ids) == len(keys) == len(lines):
        raise ValueError(f"bundle of {len(lines)} lines has inconsistent {IDS_HEADER}/{KEYS_HEADER} headers")
    return [Part(line, _text(key), _text(mid) or None) for line, key, mid in zip(lines, keys, ids, strict=True)]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def wanted(routing_key: str, patterns: Iterable[str]) -> bool:
    """True when a topic-exchange binding pattern ('*' one word, '#' any number) matches the key."""
    words = routing_key.split(".")
    return any(pattern == "#" or _match(pattern.split("."), words) for pattern in patterns)


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])
