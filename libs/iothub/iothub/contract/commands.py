"""Server-to-device command messages (protocol v2, section Commands)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

COMMANDS = ("update_config", "start_ota", "reboot", "factory_reset", "request_status")
# Terminal states a device can report in command_ack, plus the server-side ones.
COMMAND_STATES = ("pending", "sent", "accepted", "rejected", "error", "unsupported", "expired")


def encode_command(cmd_id: str, cmd: str, params: dict[str, Any], ts: datetime | None = None) -> bytes:
    """Serialise a command for iot/{device_id}/command."""
    if cmd not in COMMANDS:
        raise ValueError(f"unknown command {cmd!r}")
    when = (ts or datetime.now(UTC)).astimezone(UTC)
    return orjson.dumps({"v": 2, "cmd_id": cmd_id, "ts": when.isoformat().replace("+00:00", "Z"),
                         "cmd": cmd, "params": params})
