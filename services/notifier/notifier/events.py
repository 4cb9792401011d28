"""Decode of the rule engine's event-change messages (docs/events.md): the only module that knows the wire format."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SEVERITIES = ("info", "warning", "critical")


class InvalidChange(ValueError):
    """A message that can never be decoded into an event change."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Event:
    """The event as it stands after the change."""

    id: str
    rule_id: str | None
    rule_name: str
    rule_kind: str
    device_id: str
    device_type: str | None
    severity: str
    message: str
    status: str
    last_ts: datetime | None


@dataclass(frozen=True)
class EventChange:
    """One published change of an event, plus the JSON object it came in (delivered as-is to webhooks)."""

    change_id: str
    change: str
    event: Event
    occurred_at: datetime | None
    routing_key: str
    payload: dict[str, Any]


def decode(body: bytes, message_id: str | None = None, routing_key: str = "") -> EventChange:
    """Parse and validate one message body; raises InvalidChange for anything unusable."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidChange("invalid_json", str(exc)[:200]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("event"), dict):
        raise InvalidChange("invalid_change", "body must be an object with an 'event' object")
    raw = doc["event"]
    change_id = _uuid(doc.get("change_id") or message_id, "change_id")
    change = _text(doc, "change")
    severity = _text(raw, "severity")
    if severity not in SEVERITIES:
        raise InvalidChange("invalid_change", f"unknown severity {severity!r}")
    event = Event(
        id=_uuid(raw.get("id"), "event.id"),
        rule_id=_uuid(raw["rule_id"], "event.rule_id") if raw.get("rule_id") else None,
        rule_name=_text(raw, "rule_name"),
        rule_kind=_text(raw, "rule_kind"),
        device_id=_text(raw, "device_id"),
        device_type=raw.get("device_type") or None,
        severity=severity,
        message=str(raw.get("message") or ""),
        status=str(raw.get("status") or ""),
        last_ts=_timestamp(raw.get("last_ts"), "event.last_ts"),
    )
    return EventChange(change_id, change, event, _timestamp(doc.get("occurred_at"), "occurred_at"), routing_key, doc)


def _text(doc: dict, name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidChange("invalid_change", f"{name} must be a non-empty string")
    return value


def _uuid(value: Any, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidChange("invalid_change", f"{name} must be a uuid, got {value!r}"[:200]) from None


def _timestamp(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidChange("invalid_change", f"{name} must be ISO-8601, got {value!r}"[:200]) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
