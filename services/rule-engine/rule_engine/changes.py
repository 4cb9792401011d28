"""One batch's changes: copy-on-write rule state plus the event lifecycle (open, repeat, renotify, resolve)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from iothub import topology
from rule_engine.model import SEVERITY_RANK, Event, Progress, Rule, RuleState, iso, new_id

Key = tuple[str, str]  # (rule_id, device_id)


@dataclass(slots=True)
class Outgoing:
    """An event change to store in the outbox (and publish after commit)."""

    message_id: str
    routing_key: str
    payload: dict[str, Any]


@dataclass
class Changes:
    """Everything one batch changed; nothing touches the engine's base state until `Evaluator.commit`."""

    base_states: dict[Key, RuleState]
    base_progress: dict[str, Progress]
    now: float
    states: dict[Key, RuleState] = field(default_factory=dict)
    progress: dict[str, Progress] = field(default_factory=dict)
    inserted: dict[str, Event] = field(default_factory=dict)
    updated: dict[str, Event] = field(default_factory=dict)
    outbox: list[Outgoing] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # devices whose rule state changed
    save_progress: dict[str, Progress] = field(default_factory=dict)  # the progress rows worth writing
    evaluations: int = 0
    matches: int = 0
    duplicates: int = 0
    counts: collections.Counter = field(default_factory=collections.Counter)  # (change, severity) -> n
    stored_latency: list[float] = field(default_factory=list)  # received_at of inputs that changed an event

    def peek(self, key: Key) -> RuleState | None:
        """The current state without marking it changed."""
        found = self.states.get(key)
        return found if found is not None else self.base_states.get(key)

    def state(self, key: Key) -> RuleState:
        """The state to change (copied from the base on first touch)."""
        found = self.states.get(key)
        if found is None:
            base = self.base_states.get(key)
            found = self.states[key] = base.copy() if base is not None else RuleState()
            self.touched.add(key[1])
        return found

    def device(self, device_id: str, device_type: str | None) -> Progress:
        """The device's progress to change (copied on first touch)."""
        found = self.progress.get(device_id)
        if found is None:
            base = self.base_progress.get(device_id)
            found = self.progress[device_id] = base.copy() if base is not None else Progress(device_type)
        return found

    def publish(self, change: str, event: Event, received_at: float | None = None) -> None:
        """Queue an event change for the outbox."""
        message_id = new_id()
        payload = {"change_id": message_id, "change": change, "occurred_at": iso(self.now), "event": event.payload()}
        self.outbox.append(Outgoing(message_id, topology.event_key(event.severity, event.rule_kind, event.rule_id),
                                    payload))
        self.counts[(change, event.severity)] += 1
        if received_at is not None:
            self.stored_latency.append(received_at)

    def touch(self, event: Event) -> None:
        """Mark an event row as changed."""
        if event.id not in self.inserted:
            self.updated[event.id] = event

    def hit(self, rule: Rule, st: RuleState, *, device_id: str, device_type: str | None, ts: float,
            value: float | None, message: str, trigger: dict, received_at: float | None,
            first_ts: float | None = None) -> None:
        """A rule matched: repeat the open event or open one (unless cooling down)."""
        ev = st.event
        if ev is not None:
            self.repeat(rule, st, ts, value, received_at)
            return
        if rule.cooldown_seconds and st.cleared_at is not None and ts - st.cleared_at < rule.cooldown_seconds:
            self.counts[("suppressed", rule.severity)] += 1
            return
        ev = Event(new_id(), rule.id, rule.name, rule.kind, device_id, device_type, rule.severity, message,
                   first_ts if first_ts is not None else ts, ts, trigger_values=trigger, last_value=value)
        st.event, st.pending_since, st.last_notified_at, st.last_value = ev, None, ts, value
        self.inserted[ev.id] = ev
        self.publish("opened", ev, received_at)

    def repeat(self, rule: Rule, st: RuleState, ts: float, value: float | None, received_at: float | None) -> None:
        """Count another match on the open event; escalate or re-notify when due."""
        ev = st.event
        ev.count += 1
        ev.last_ts = max(ev.last_ts, ts)
        ev.last_value = st.last_value = value
        self.touch(ev)
        self.counts[("updated", ev.severity)] += 1
        if SEVERITY_RANK[rule.severity] > SEVERITY_RANK[ev.severity]:
            ev.severity = rule.severity
            st.last_notified_at = ts
            self.publish("escalated", ev, received_at)
        elif self.renotify_due(rule, st, ts):
            st.last_notified_at = ts
            self.publish("renotify", ev, received_at)
        elif received_at is not None:
            self.stored_latency.append(received_at)

    @staticmethod
    def renotify_due(rule: Rule, st: RuleState, ts: float) -> bool:
        """Whether an open, unacknowledged event is due another notification."""
        ev = st.event
        if not rule.renotify_seconds or ev is None or ev.status != "open":
            return False
        return ts - (st.last_notified_at if st.last_notified_at is not None else ev.first_ts) >= rule.renotify_seconds

    def resolve(self, st: RuleState, ts: float, received_at: float | None = None) -> None:
        """Resolve the open event by the system (hysteresis, device back, OTA success)."""
        ev = st.event
        ev.status, ev.resolved_by, ev.resolved_at = "resolved", "system", self.now
        ev.last_ts = max(ev.last_ts, ts)
        self.touch(ev)
        st.event, st.cleared_at, st.pending_since = None, ts, None
        self.publish("resolved", ev, received_at)

    def sync(self, states: dict[Key, RuleState], statuses: dict[str, str]) -> None:
        """Apply what the API did to our open events: acknowledged, or resolved (then count it as cleared now)."""
        for key, base in states.items():
            ev = base.event
            status = statuses.get(ev.id, "resolved")
            if status == ev.status:
                continue
            st = self.state(key)
            if status == "resolved":
                st.event, st.cleared_at, st.pending_since = None, max(ev.last_ts, st.cleared_at or 0.0), None
            else:
                st.event.status = status
