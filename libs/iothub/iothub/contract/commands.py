"""Server-to-device command messages (protocol v2, section Commands)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

COMMANDS = ("update_config", "start_ota", "reboot", "factory_reset", "request_status")
# Terminal states a device can report in command_ack, plus the server-side ones.
COMMAND_STATES = ("pending", "sent", "accepted", "rejected", "error", "unsupported", "expired")


def encode_command(cmd_id: str, cmd: str, params: dict[str, Any], ts: datetime | str | None = None, *,
                   exp: str | None = None, sig: str | None = None) -> bytes:
    """Serialise a command for iot/{device_id}/command; `exp` and `sig` are the signed form's (contract.signing)."""
    if cmd not in COMMANDS:
        raise ValueError(f"unknown command {cmd!r}")
    if not isinstance(ts, str):
        ts = (ts or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    body: dict[str, Any] = {"v": 2, "cmd_id": cmd_id, "ts": ts, "cmd": cmd, "params": params}
    if exp is not None:
        body["exp"] = exp
    if sig is not None:
        body["sig"] = sig
    return orjson.dumps(body)
