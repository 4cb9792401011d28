"""Human-readable text of an event change, shared by the log and email channels."""

from __future__ import annotations

from notifier.events import EventChange


def subject(change: EventChange) -> str:
    """One-line summary: severity, change, rule and device."""
    event = change.event
    return f"[IoT Hub] {event.severity.upper()} {change.change}: {event.rule_name} on {event.device_id}"


def text(change: EventChange) -> str:
    """Plain-text body listing the event's fields."""
    event = change.event
    lines = [
        event.message or subject(change),
        "",
        f"Change:      {change.change}",
        f"Severity:    {event.severity}",
        f"Status:      {event.status}",
        f"Rule:        {event.rule_name} ({event.rule_kind})",
        f"Device:      {event.device_id}" + (f" ({event.device_type})" if event.device_type else ""),
        f"Last seen:   {event.last_ts.isoformat() if event.last_ts else '-'}",
        f"Event id:    {event.id}",
        f"Change id:   {change.change_id}",
    ]
    return "\n".join(lines) + "\n"
