"""Command rules: parameter checks and names, expiry, dispatch (publish at QoS 2 by default, then pending -> sent)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from iothub.contract.commands import COMMANDS

OPEN = ("pending", "sent")  # the collector settles these from acks; the rule engine expires them
TERMINAL = ("accepted", "rejected", "error", "unsupported", "expired")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# start_ota params as older IoT Hub releases spelled them -> the device spec v2 names every start_ota is sent with.
LEGACY_OTA_NAMES = {"url": "fw_url", "sha256": "fw_sha256", "size": "fw_size_bytes"}


class CommandError(ValueError):
    """Invalid command or parameters (the API answers 422)."""

    def __init__(self, message: str, field_errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.field_errors = field_errors or {}


@dataclass(frozen=True)
class Outgoing:
    """One command on its way to a device."""

    device_id: str  # the MQTT identity, not the row UUID
    cmd_id: str
    cmd: str
    params: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None  # the command's expiry: the signed `exp` (else the signing TTL applies)
    ts: str | None = None  # set with exp and sig by service.signing.SignedPublisher just before publishing
    exp: str | None = None
    sig: str | None = None


class Publisher(Protocol):
    """Publishes commands and says which ones the broker acknowledged."""

    def publish_many(self, commands: Iterable[Outgoing]) -> set[str]:
        """Publish at the command QoS; the cmd_ids whose QoS handshake completed in time."""


class SentMarker(Protocol):
    """Records that commands reached the broker."""

    def mark_sent(self, cmd_ids: Sequence[str]) -> int:
        """pending -> sent for these ids (never overwriting an ack that already arrived)."""


def check(cmd: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params to store and send (spec spelling); raise CommandError when the command cannot work."""
    if cmd not in COMMANDS:
        raise CommandError(f"Unknown command {cmd!r}", {"cmd": [f"Must be one of: {', '.join(COMMANDS)}."]})
    if cmd == "start_ota":
        params = spec_ota_params(params)
        check_ota(params)
    return params


def spec_ota_params(params: dict[str, Any]) -> dict[str, Any]:
    """start_ota params with the legacy url/sha256/size renamed to fw_url/fw_sha256/fw_size_bytes."""
    both = [f"Give {legacy} or {spec}, not both." for legacy, spec in LEGACY_OTA_NAMES.items()
            if legacy in params and spec in params]
    if both:
        raise CommandError("Invalid start_ota parameters", {"params": {"_schema": both}})
    return {LEGACY_OTA_NAMES.get(k, k): v for k, v in params.items()}


def check_ota(params: dict[str, Any]) -> None:
    """start_ota needs fw_version, fw_url, fw_sha256 (64 lower-case hex) and a positive fw_size_bytes."""
    errors: dict[str, list[str]] = {}
    for key in ("fw_version", "fw_url"):
        if not isinstance(params.get(key), str) or not params[key]:
            errors[key] = ["Required non-empty string."]
    if not isinstance(params.get("fw_sha256"), str) or not _SHA256.match(params["fw_sha256"]):
        errors["fw_sha256"] = ["Required: 64 lower-case hex digits."]
    size = params.get("fw_size_bytes")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        errors["fw_size_bytes"] = ["Required positive integer."]
    if errors:
        raise CommandError("Invalid start_ota parameters", {"params": errors})


def ota_params(fw_version: str, url: str, sha256: str, size_bytes: int) -> dict[str, Any]:
    """The start_ota params of a rollout, in the device spec's names."""
    return {"fw_version": fw_version, "fw_url": url, "fw_sha256": sha256, "fw_size_bytes": size_bytes}


def expiry(expires_in_s: int, now: datetime | None = None) -> datetime:
    """When an unacknowledged command expires."""
    return (now or datetime.now(UTC)) + timedelta(seconds=expires_in_s)


def new_cmd_id() -> str:
    """A fresh command id."""
    return str(uuid.uuid4())


def dispatch(publisher: Publisher, store: SentMarker, commands: Sequence[Outgoing]) -> set[str]:
    """Publish the commands and mark the acknowledged ones sent; the rest stay pending until they expire."""
    if not commands:
        return set()
    acked = publisher.publish_many(commands)
    if acked:
        store.mark_sent(sorted(acked))
    return acked
