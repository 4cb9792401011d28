"""Command signatures: the canonical bytes a device's key signs (docs/protocol.md, Signed commands) and the HMAC."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

SCHEME = b"iothub-cmd-v1"  # first line of the canonical form: a new layout gets a new name
KEY_BYTES = 32
CLOCK_SKEW = timedelta(seconds=60)  # how far a device tolerates `ts` ahead of its own clock


class SignatureError(ValueError):
    """A command that must not be executed; the message is the ack's detail."""


def canonical(device_id: str, body: dict[str, Any]) -> bytes:
    """scheme, device_id, cmd_id, ts, exp, cmd, params (sorted compact JSON): UTF-8, joined by newlines."""
    fields = [body.get(name) for name in ("cmd_id", "ts", "exp", "cmd")]
    if not all(isinstance(f, str) and f and "\n" not in f for f in fields):
        raise SignatureError("cmd_id, ts, exp and cmd must be non-empty strings")
    params = orjson.dumps(body.get("params") or {}, option=orjson.OPT_SORT_KEYS)
    return b"\n".join([SCHEME, device_id.encode(), *(f.encode() for f in fields), params])


def signature(key: bytes, device_id: str, body: dict[str, Any]) -> str:
    """HMAC-SHA256 of the canonical form under the device's key, as 64 lower-case hex digits."""
    return hmac.digest(key, canonical(device_id, body), "sha256").hex()  # the name, not hashlib.sha256: OpenSSL's path


def verify(key: bytes | None, device_id: str, body: dict[str, Any], now: datetime | None = None) -> None:
    """Raise SignatureError unless `body` is signed with `key` for this device and is inside its validity window."""
    if key is None:
        raise SignatureError("no command key provisioned")
    sig = body.get("sig")
    if not isinstance(sig, str) or not sig:
        raise SignatureError("missing signature")
    if not hmac.compare_digest(sig.lower(), signature(key, device_id, body)):
        raise SignatureError("bad signature")
    now = now or datetime.now(UTC)
    if parse_time(body["exp"], "exp") < now:
        raise SignatureError("expired")
    if parse_time(body["ts"], "ts") > now + CLOCK_SKEW:
        raise SignatureError("issued in the future")


def parse_time(text: str, name: str) -> datetime:
    """An ISO 8601 UTC instant ('...Z' or '+00:00'); SignatureError when unreadable."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureError(f"{name} is not an ISO 8601 time") from exc
    if when.tzinfo is None:
        raise SignatureError(f"{name} has no time zone")
    return when


def stamp(when: datetime) -> str:
    """The wire form of a command time: UTC, second precision, 'Z'."""
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
