"""Rule use cases: threshold rules are created, changed and deleted; built-in kinds are only tuned. Every change
tells the rule engines to reload."""

from __future__ import annotations

from typing import Any, Protocol

from device_manager.service.errors import Conflict, Invalid, NotFound
from device_manager.service.pagination import Page, PageRequest

BUILTIN_KINDS = ("seq_gap", "offline", "ota_failed", "command_timeout", "redundancy")
KINDS = ("threshold", *BUILTIN_KINDS)
# What may change on a rule, by kind; everything else is fixed once created.
THRESHOLD_FIELDS = ("name", "description", "scope", "device_id", "device_type", "metric", "operator", "threshold",
                    "severity", "message_template", "for_seconds", "clear_hysteresis", "renotify_seconds",
                    "cooldown_seconds", "params", "enabled")
BUILTIN_FIELDS = ("description", "params", "severity", "message_template", "renotify_seconds", "cooldown_seconds",
                  "enabled")


class RuleStore(Protocol):
    """Where rules live."""

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""

    def get(self, rule_id) -> dict[str, Any] | None:
        """One rule."""

    def create(self, data: dict[str, Any], actor: str) -> dict[str, Any]:
        """Insert a threshold rule."""

    def update(self, rule_id, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply changes; None when absent."""

    def delete(self, rule_id) -> str | None:
        """Delete a threshold rule; its kind (built-ins are kept), None when absent."""


class RuleNotifier(Protocol):
    """Tells the rule engines that rules changed."""

    def notify_rules_changed(self, rule_id: str, change: str) -> bool:
        """Best effort (the engines also reload periodically); True when published."""


def scope_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """device scope needs device_id, device_type scope needs device_type, and neither id belongs elsewhere."""
    scope = data.get("scope", "all")
    errors = {}
    if scope == "device" and not data.get("device_id"):
        errors["device_id"] = ["Required when scope is device."]
    if scope == "device_type" and not data.get("device_type"):
        errors["device_type"] = ["Required when scope is device_type."]
    if scope != "device" and data.get("device_id"):
        errors["device_id"] = ["Only allowed when scope is device."]
    if scope != "device_type" and data.get("device_type"):
        errors["device_type"] = ["Only allowed when scope is device_type."]
    return errors


class RuleService:
    """Alert rules."""

    def __init__(self, rules: RuleStore, notifier: RuleNotifier):
        self.rules = rules
        self.notifier = notifier

    def list(self, req: PageRequest) -> Page:
        """A page of rules."""
        return self.rules.list(req)

    def get(self, rule_id) -> dict[str, Any]:
        """One rule; NotFound when unknown."""
        return _found(self.rules.get(rule_id))

    def create(self, data: dict[str, Any], actor: str) -> dict[str, Any]:
        """Create a threshold rule."""
        rule = self.rules.create(data, actor)
        self.notifier.notify_rules_changed(rule["id"], "created")
        return rule

    def update(self, rule_id, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a rule; built-in kinds accept only their tunables."""
        rule = self.get(rule_id)
        if rule["builtin"]:
            fixed = sorted(set(changes) - set(BUILTIN_FIELDS))
            if fixed:
                raise Invalid("Built-in rules only accept " + ", ".join(BUILTIN_FIELDS),
                              {"json": {name: ["Not editable on a built-in rule."] for name in fixed}})
            _check_params(rule["kind"], changes.get("params"))
        else:
            changes = _rescope(rule, changes)
        updated = _found(self.rules.update(rule_id, changes))
        self.notifier.notify_rules_changed(rule_id, "updated")
        return updated

    def delete(self, rule_id) -> None:
        """Delete a threshold rule (built-in kinds are disabled instead: Conflict)."""
        kind = self.rules.delete(rule_id)
        if kind is None:
            raise NotFound("Rule not found")
        if kind != "threshold":
            raise Conflict("Built-in rules cannot be deleted; set enabled to false instead", {"kind": kind})
        self.notifier.notify_rules_changed(rule_id, "deleted")


def _check_params(kind: str, params: dict | None) -> None:
    """The knobs the rule engine reads must have the type it expects (offline: factor, a multiple of the
    device's send/hello interval)."""
    if params is None or kind != "offline":
        return
    factor = params.get("factor", 2)
    unknown = sorted(set(params) - {"factor"})
    if unknown or isinstance(factor, bool) or not isinstance(factor, int | float) or not 1 <= factor <= 1000:
        raise Invalid("Request validation failed",
                      {"json": {"params": ["offline takes only factor, a number from 1 to 1000."]}})


def _rescope(rule: dict, changes: dict) -> dict:
    """Clear the ids a new scope does not use, then check the merged rule is consistent."""
    changes = dict(changes)
    scope = changes.get("scope", rule["scope"])
    if scope != "device" and "device_id" not in changes:
        changes["device_id"] = None
    if scope != "device_type" and "device_type" not in changes:
        changes["device_type"] = None
    errors = scope_errors({**rule, **changes})
    if errors:
        raise Invalid("Request validation failed", {"json": errors})
    return changes


def _found(rule):
    if rule is None:
        raise NotFound("Rule not found")
    return rule
