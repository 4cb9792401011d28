"""Rule engine domain types: rules, the rule index, rule state, events and inputs."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

THRESHOLD = "threshold"
BUILTIN_KINDS = ("seq_gap", "offline", "ota_failed", "command_timeout", "redundancy")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
OPERATORS = {"gt": operator.gt, "lt": operator.lt, "gte": operator.ge, "lte": operator.le,
             "eq": operator.eq, "neq": operator.ne}


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the rules table."""

    id: str
    name: str
    kind: str = THRESHOLD
    scope: str = "all"
    device_id: str | None = None
    device_type: str | None = None
    metric: str | None = None
    operator: str | None = None
    threshold: float | None = None
    severity: str = "warning"
    message_template: str = "{metric} on {device_id} is {value} {unit} (threshold {threshold})"
    for_seconds: float = 0
    clear_hysteresis: float = 0
    renotify_seconds: float = 0
    cooldown_seconds: float = 0
    params: dict = field(default_factory=dict)
    enabled: bool = True
    test: Callable[[float, float], bool] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.operator is not None and self.test is None:  # resolved once, called per reading
            object.__setattr__(self, "test", OPERATORS[self.operator])

    def matches(self, value: float) -> bool:
        """Whether a value breaches this threshold rule."""
        return self.test(value, self.threshold)

    def cleared(self, value: float) -> bool:
        """Whether a value is back past the threshold by the hysteresis margin."""
        h, t, op = self.clear_hysteresis, self.threshold, self.operator
        return _CLEARED[op](value, t, h)


_CLEARED = {
    "gt": lambda v, t, h: v <= t - h, "gte": lambda v, t, h: v < t - h,
    "lt": lambda v, t, h: v >= t + h, "lte": lambda v, t, h: v > t + h,
    "eq": lambda v, t, h: abs(v - t) > h, "neq": lambda v, t, h: abs(v - t) <= h,
}


@dataclass(slots=True)
class Event:
    """The in-memory copy of an unresolved event row."""

    id: str
    rule_id: str
    rule_name: str
    rule_kind: str
    device_id: str
    device_type: str | None
    severity: str
    message: str
    first_ts: float
    last_ts: float
    status: str = "open"
    count: int = 1
    trigger_values: dict = field(default_factory=dict)
    last_value: float | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None

    def payload(self) -> dict[str, Any]:
        """The `event` object of the wire format in docs/events.md."""
        return {"id": self.id, "rule_id": self.rule_id, "rule_name": self.rule_name, "rule_kind": self.rule_kind,
                "device_id": self.device_id, "device_type": self.device_type, "severity": self.severity,
                "message": self.message, "status": self.status, "first_ts": iso(self.first_ts),
                "last_ts": iso(self.last_ts), "count": self.count, "trigger_values": self.trigger_values,
                "last_value": self.last_value, "resolved_by": self.resolved_by,
                "resolved_at": iso(self.resolved_at) if self.resolved_at is not None else None}


@dataclass(slots=True)
class RuleState:
    """Runtime state of one (rule, device); times are device-clock epoch seconds."""

    pending_since: float | None = None
    event: Event | None = None
    last_value: float | None = None
    last_notified_at: float | None = None
    cleared_at: float | None = None

    def copy(self) -> RuleState:
        """A copy whose event can be changed without touching the original."""
        ev = self.event
        clone = Event(**{k: getattr(ev, k) for k in Event.__slots__}) if ev is not None else None
        return RuleState(self.pending_since, clone, self.last_value, self.last_notified_at, self.cleared_at)


@dataclass(slots=True)
class Progress:
    """Per device: what was processed last (for idempotency) and when it was last heard (wall clock)."""

    device_type: str | None
    epoch: int = -1
    seq: int = -1
    window: int = 0  # bitmap of processed seqs below `seq`
    last_seen: float = 0.0
    gap_epoch: int = -1
    gap_seq: int = -1
    saved_seen: float = 0.0  # last_seen as last written to the store

    def copy(self) -> Progress:
        """An independent copy."""
        return Progress(self.device_type, self.epoch, self.seq, self.window, self.last_seen,
                        self.gap_epoch, self.gap_seq, self.saved_seen)

    def accept(self, epoch: int, seq: int) -> bool:
        """Record (epoch, seq) as processed; False when it already was (a redelivery)."""
        if seq < 0:
            return True  # unsequenced messages (status, protocol v1) cannot be deduplicated
        if epoch != self.epoch:
            if epoch < self.epoch:
                return False
            self.epoch, self.seq, self.window = epoch, seq, 0
            return True
        if seq > self.seq:
            shift = seq - self.seq
            self.window = ((self.window << shift) | (1 << (shift - 1))) & 0xFFFFFFFFFFFFFFFF if shift <= 64 else 0
            self.seq = seq
            return True
        back = self.seq - seq
        if back == 0 or back > 64 or self.window >> (back - 1) & 1:
            return False
        self.window |= 1 << (back - 1)
        return True


@dataclass(frozen=True, slots=True)
class Input:
    """A decoded broker message: a device message (kind "msg"), a gap notice ("gap") or a seen notice ("seen")."""

    kind: str
    device_id: str
    device_type: str
    epoch: int
    seq: int
    ts: float
    received_at: float
    msg_type: str = ""
    msg_id: str = ""
    body: dict = field(default_factory=dict)


# A device's applied configuration as far as rules need it: (send_interval_s, hello_interval_s, broker count).
Intervals = tuple[float | None, float | None, int | None]


class RuleIndex:
    """Enabled rules indexed so a measurement only meets the rules that can apply to it."""

    def __init__(self, rules: list[Rule], intervals: dict[str, tuple[int, int]] | None = None,
                 device_intervals: dict[str, Intervals] | None = None):
        self.rules = {r.id: r for r in rules}
        self.intervals = intervals or {}  # device_type -> (send_interval_s, hello_interval_s)
        # device_id -> the intervals its last accepted update_config set (None: the type's); shared, kept fresh
        # by RuleService, so a rules reload does not forget them.
        self.device_intervals = device_intervals if device_intervals is not None else {}
        self._by_metric: dict[str, tuple[dict, dict, list]] = {}
        self._builtin: dict[str, tuple[dict, dict, list]] = {k: ({}, {}, []) for k in BUILTIN_KINDS}
        for rule in rules:
            if not rule.enabled:
                continue
            if rule.kind == THRESHOLD:
                slot = self._by_metric.setdefault(rule.metric, ({}, {}, []))
            else:
                slot = self._builtin[rule.kind]
            if rule.scope == "device":
                slot[0].setdefault(rule.device_id, []).append(rule)
            elif rule.scope == "device_type":
                slot[1].setdefault(rule.device_type, []).append(rule)
            else:
                slot[2].append(rule)

    def for_metric(self, metric: str, device_id: str, device_type: str) -> list[Rule]:
        """Every enabled threshold rule on this metric that covers the device."""
        slot = self._by_metric.get(metric)
        if slot is None:
            return []
        by_device, by_type, common = slot
        found = by_device.get(device_id)
        typed = by_type.get(device_type)
        if found is None and typed is None:
            return common
        return (found or []) + (typed or []) + common

    def builtin(self, kind: str, device_id: str, device_type: str | None) -> Rule | None:
        """The most specific enabled built-in rule of a kind: device, then device type, then all."""
        by_device, by_type, common = self._builtin[kind]
        for found in (by_device.get(device_id), by_type.get(device_type), common):
            if found:
                return found[0]
        return None

    def offline_limit(self, rule: Rule, device_type: str | None, device_id: str = "") -> float:
        """Seconds of silence after which a device counts as offline: factor x max(send, hello) of its current
        configuration (spec REQ-ONLINE-001), each interval falling back to its device type's."""
        send, hello = self.intervals.get(device_type or "", (10, 60))
        own = self.device_intervals.get(device_id)
        if own is not None:
            send, hello = own[0] or send, own[1] or hello
        return float(rule.params.get("factor", 2)) * max(send, hello)

    def expected_brokers(self, rule: Rule, device_id: str) -> int | None:
        """How many brokers a device should be connected to: the length of the broker list its applied
        configuration names, else the rule's `min_connections`; None when neither says (nothing to judge)."""
        own = self.device_intervals.get(device_id)
        if own is not None and own[2]:
            return int(own[2])
        minimum = rule.params.get("min_connections")
        return int(minimum) if isinstance(minimum, int | float) and not isinstance(minimum, bool) else None


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, **values: Any) -> str:
    """Fill a message template; unknown placeholders stay as written."""
    shown = {k: (f"{v:g}" if isinstance(v, float) else v) for k, v in values.items()}
    try:
        return template.format_map(_Blank(shown))
    except (ValueError, IndexError, AttributeError):  # a malformed template must not stop evaluation
        return template


def iso(ts: float) -> str:
    """Epoch seconds as ISO-8601 UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


def parse_time(value: str) -> float:
    """ISO-8601 (with offset or Z) to epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value).timestamp()


def new_id() -> str:
    """A fresh uuid as text."""
    return str(uuid.uuid4())
