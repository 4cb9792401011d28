"""The log channel: always on, writes the notification as a structured log line."""

from __future__ import annotations

import logging

from notifier import render
from notifier.service import Claim, Outcome

log = logging.getLogger("notifier.channel.log")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}


class LogNotifier:
    """Notifier that logs each event change; the subscription's target names the audience."""

    def send(self, claim: Claim) -> Outcome:
        """Log the notification; never fails."""
        event = claim.change.event
        log.log(_LEVELS.get(event.severity, logging.INFO), render.subject(claim.change), extra={
            "target": claim.target, "change": claim.change.change, "change_id": claim.change.change_id,
            "event_id": event.id, "device_id": event.device_id, "severity": event.severity,
            "rule_name": event.rule_name, "event_message": event.message, "notification_id": claim.notification_id,
        })
        return Outcome(True)
