"""What a device answers to a server command (iot/{id}/command), before any side effect happens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from simulator.config import DeviceConfig
from simulator.ota import OtaRequest, parse_request
from simulator.profile import IOTHUB, Profile

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
META_KEYS = ("config", "version")  # older IoT Hub releases' envelope around the settings
SUPPORTED = ("update_config", "start_ota", "reboot", "factory_reset", "request_status")


@dataclass(frozen=True, slots=True)
class Decision:
    """The ack to send and the action to take once it is sent."""

    cmd_id: str
    cmd: str
    result: str  # accepted | rejected | unsupported | error
    detail: str = ""
    action: str | None = None  # config | ota | reboot | factory_reset | hello
    config: DeviceConfig | None = None
    ota: OtaRequest | None = None


def read(raw: bytes) -> dict[str, Any] | None:
    """The command object, or None when there is no cmd_id to acknowledge."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("cmd_id"), str) or not UUID_RE.match(body["cmd_id"]):
        return None
    return body


def decide(body: dict[str, Any], config: DeviceConfig, ota_running: bool, profile: Profile = IOTHUB) -> Decision:
    """Validate one command against the device's state."""
    cmd_id, cmd = body["cmd_id"], body.get("cmd")
    params = body.get("params") or {}
    if not isinstance(cmd, str) or cmd not in SUPPORTED:
        return Decision(cmd_id, str(cmd), "unsupported", f"unknown command {str(cmd)[:40]!r}")
    if not isinstance(params, dict):
        return Decision(cmd_id, cmd, "rejected", "params must be an object")
    try:
        if cmd == "update_config":
            return _update_config(cmd_id, params, config, profile.spec_config)
        if cmd == "start_ota":
            if ota_running:
                raise ValueError("an update is already running")
            return Decision(cmd_id, cmd, "accepted", "", "ota", ota=parse_request(params))
    except ValueError as exc:
        return Decision(cmd_id, cmd, "rejected", str(exc))
    return Decision(cmd_id, cmd, "accepted", "", "hello" if cmd == "request_status" else cmd)


def _update_config(cmd_id: str, params: dict[str, Any], config: DeviceConfig, spec: bool) -> Decision:
    nested = params.get("config")  # accept {"send_interval_s": 5} and {"config": {...}, "version": 3}
    new, notes, ignored = config.updated({**params, **nested} if isinstance(nested, dict) else params, spec=spec)
    unknown = [k for k in ignored if k not in META_KEYS]
    parts = notes if spec else []  # the spec's detail says what changed: "send_interval_s updated to 5"
    if unknown:
        parts = [*parts, f"ignored: {', '.join(unknown)}"]
    return Decision(cmd_id, "update_config", "accepted", "; ".join(parts), "config", config=new)
