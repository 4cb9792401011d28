"""Pure rule evaluation: threshold rules with for_seconds/hysteresis, and the built-in rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rule_engine.changes import Changes, Key
from rule_engine.model import Input, Progress, Rule, RuleIndex, RuleState, iso, parse_time, render


@dataclass(frozen=True, slots=True)
class ExpiredCommand:
    """A command the device never acknowledged before expires_at."""

    cmd_id: str
    device_id: str
    device_type: str | None
    cmd: str
    expires_at: float


class Evaluator:
    """Holds rule state and device progress in memory; batches change copies that `commit` merges back."""

    def __init__(self, index: RuleIndex, states: dict[Key, RuleState] | None = None,
                 progress: dict[str, Progress] | None = None, *, started_at: float = 0.0,
                 persist_seen_s: float = 30.0, claimed: dict[str, float] | None = None):
        self.index = index
        self.started_at = started_at  # silence is only counted from here (no false offline after a restart)
        # Per device, when its partition became ours: the stored last_seen may lag by persist_seen_s.
        self.claimed: dict[str, float] = claimed or {}
        self.persist_seen_s = persist_seen_s
        self.states: dict[Key, RuleState] = states or {}
        self.progress: dict[str, Progress] = progress or {}
        self._open: dict[str, set[str]] = {}  # device_id -> rule ids with an open event
        for (rule_id, device_id), st in self.states.items():
            if st.event is not None:
                self._open.setdefault(device_id, set()).add(rule_id)

    # -- batch lifecycle ----------------------------------------------------------------------

    def open_events(self, device_ids: Iterable[str]) -> dict[Key, RuleState]:
        """States holding an open event for these devices (their status is re-read from the store)."""
        found = {}
        for device_id in device_ids:
            for rule_id in self._open.get(device_id, ()):
                found[(rule_id, device_id)] = self.states[(rule_id, device_id)]
        return found

    def begin(self, now: float, open_states: dict[Key, RuleState] | None = None,
              statuses: dict[str, str] | None = None) -> Changes:
        """Start a batch, first applying acknowledgements/resolutions made by others."""
        changes = Changes(self.states, self.progress, now)
        if open_states:
            changes.sync(open_states, statuses or {})
        return changes

    def finish(self, ch: Changes) -> None:
        """Choose the progress rows worth storing for this batch."""
        # A redelivered message that changed no rule state changes nothing when evaluated again, so its device's
        # progress only has to be written when state changed, for new devices, new gap notices, or when last_seen
        # drifted more than persist_seen_s from the stored one (offline detection after a restart).
        for device_id, prog in ch.progress.items():
            base = self.progress.get(device_id)
            if (device_id in ch.touched or base is None or prog.gap_seq != base.gap_seq
                    or prog.gap_epoch != base.gap_epoch or prog.last_seen - prog.saved_seen >= self.persist_seen_s):
                prog.saved_seen = prog.last_seen
                ch.save_progress[device_id] = prog

    def commit(self, changes: Changes) -> None:
        """Make a stored batch the engine's state."""
        for key, st in changes.states.items():
            self.states[key] = st
            rule_id, device_id = key
            if st.event is not None:
                self._open.setdefault(device_id, set()).add(rule_id)
            elif device_id in self._open:
                self._open[device_id].discard(rule_id)
        self.progress.update(changes.progress)

    def drop_rules(self, keep: set[str]) -> None:
        """Forget the state of deleted rules."""
        for key in [k for k in self.states if k[0] not in keep]:
            del self.states[key]
            self._open.get(key[1], set()).discard(key[0])

    # -- inputs -------------------------------------------------------------------------------

    def process(self, ch: Changes, inp: Input) -> None:
        """Evaluate one decoded message against every rule that applies."""
        prog = ch.device(inp.device_id, inp.device_type)
        if inp.kind == "gap":
            self._gap(ch, prog, inp)
            return
        if inp.kind == "seen":  # any message is a sign of life, even one that was not published
            prog.last_seen = max(prog.last_seen, inp.received_at)
            self._back_online(ch, inp)
            return
        if not prog.accept(inp.epoch, inp.seq):
            ch.duplicates += 1
            return
        prog.device_type = inp.device_type
        body = inp.body
        if inp.msg_type == "status" and body.get("status") == "offline":
            self._offline(ch, inp.device_id, inp.device_type, silent=ch.now - (prog.last_seen or ch.now),
                          limit=0.0, last_seen=prog.last_seen, reason="status offline", received_at=inp.received_at)
            return
        prog.last_seen = max(prog.last_seen, inp.received_at)
        self._back_online(ch, inp)
        if inp.msg_type == "telemetry":
            for m in body.get("measurements", ()):
                self._measure(ch, inp, m)
        elif inp.msg_type == "ota_status":
            self._ota(ch, inp)
        elif inp.msg_type == "hello":
            self._redundancy(ch, inp)

    def _measure(self, ch: Changes, inp: Input, m: dict) -> None:
        rules = self.index.for_metric(m["type"], inp.device_id, inp.device_type)
        if not rules:
            return
        value = float(m["val"])
        device_id = inp.device_id
        overlay, base = ch.states, ch.base_states
        ch.evaluations += len(rules)
        for rule in rules:  # the hot loop: most readings match nothing and have no state
            if rule.test(value, rule.threshold):
                ch.matches += 1
                self._breach(ch, inp, m, rule, value)
                continue
            key = (rule.id, device_id)
            st = overlay.get(key) or base.get(key)
            if st is None or (st.pending_since is None and st.event is None):
                continue
            st = ch.state(key)
            st.pending_since = None
            if st.event is not None and rule.cleared(value):
                st.last_value = value
                ch.resolve(st, parse_time(m["ts"]), inp.received_at)

    @staticmethod
    def _breach(ch: Changes, inp: Input, m: dict, rule: Rule, value: float) -> None:
        ts = parse_time(m["ts"])
        st = ch.state((rule.id, inp.device_id))
        if st.event is not None:
            ch.repeat(rule, st, ts, value, inp.received_at)
            return
        if rule.for_seconds:
            if st.pending_since is None or ts < st.pending_since:
                st.pending_since = ts
            if ts - st.pending_since < rule.for_seconds:
                return
        unit = m.get("unit", "")
        message = render(rule.message_template, device_id=inp.device_id, metric=rule.metric, value=value,
                         threshold=rule.threshold, unit=unit, device_type=inp.device_type)
        trigger = {"metric": rule.metric, "value": value, "unit": unit, "ts": m["ts"], "threshold": rule.threshold,
                   "operator": rule.operator, "msg_id": inp.msg_id}
        ch.hit(rule, st, device_id=inp.device_id, device_type=inp.device_type, ts=ts, value=value, message=message,
               trigger=trigger, received_at=inp.received_at, first_ts=st.pending_since)

    # -- built-in rules -------------------------------------------------------------------------

    def _gap(self, ch: Changes, prog: Progress, inp: Input) -> None:
        if (inp.epoch, inp.seq) <= (prog.gap_epoch, prog.gap_seq):
            ch.duplicates += 1
            return
        prog.gap_epoch, prog.gap_seq = inp.epoch, inp.seq
        rule = self.index.builtin("seq_gap", inp.device_id, inp.device_type)
        if rule is None:
            return
        missing = float(inp.body.get("missing", 0))
        trigger = {k: inp.body.get(k) for k in ("expected_seq", "received_seq", "missing")} | {"epoch": inp.epoch}
        self._builtin_hit(ch, rule, inp.device_id, inp.device_type, ts=inp.ts, value=missing, trigger=trigger,
                          received_at=inp.received_at)

    def _ota(self, ch: Changes, inp: Input) -> None:
        state = inp.body.get("ota_state")
        rule = self.index.builtin("ota_failed", inp.device_id, inp.device_type)
        if rule is None or state not in ("failed", "success"):
            return
        if state == "success":
            st = ch.peek((rule.id, inp.device_id))
            if st is not None and st.event is not None:
                ch.resolve(ch.state((rule.id, inp.device_id)), inp.ts, inp.received_at)
            return
        detail = str(inp.body.get("detail", ""))
        trigger = {"cmd_id": inp.body.get("cmd_id"), "fw_version_target": inp.body.get("fw_version_target"),
                   "detail": detail}
        self._builtin_hit(ch, rule, inp.device_id, inp.device_type, ts=inp.ts, value=None, trigger=trigger,
                          received_at=inp.received_at, detail=detail, cmd_id=trigger["cmd_id"])

    def _redundancy(self, ch: Changes, inp: Input) -> None:
        rule = self.index.builtin("redundancy", inp.device_id, inp.device_type)
        links = inp.body.get("broker_connections")
        if rule is None or type(links) is not int:
            return
        expected = self.index.expected_brokers(rule, inp.device_id)
        if expected is None:
            return
        key = (rule.id, inp.device_id)
        if links >= expected:
            st = ch.peek(key)
            if st is not None and st.event is not None:
                ch.resolve(ch.state(key), inp.ts, inp.received_at)
            return
        trigger = {"broker_connections": links, "expected": expected}
        self._builtin_hit(ch, rule, inp.device_id, inp.device_type, ts=inp.ts, value=float(links), trigger=trigger,
                          received_at=inp.received_at, expected=expected)

    def _back_online(self, ch: Changes, inp: Input) -> None:
        rule = self.index.builtin("offline", inp.device_id, inp.device_type)
        if rule is None:
            return
        st = ch.peek((rule.id, inp.device_id))
        if st is not None and st.event is not None:
            ch.resolve(ch.state((rule.id, inp.device_id)), inp.ts, inp.received_at)

    def _offline(self, ch: Changes, device_id: str, device_type: str | None, *, silent: float, limit: float,
                 last_seen: float, reason: str, received_at: float | None) -> None:
        ts = ch.now
        rule = self.index.builtin("offline", device_id, device_type)
        if rule is None:
            return
        st = ch.peek((rule.id, device_id))
        if st is not None and st.event is not None:
            if ch.renotify_due(rule, st, ts):
                st = ch.state((rule.id, device_id))
                st.last_notified_at = ts
                ch.publish("renotify", st.event)
            return
        trigger = {"silent_s": round(silent, 3), "limit_s": limit, "reason": reason,
                   "last_seen": iso(last_seen) if last_seen else None}
        self._builtin_hit(ch, rule, device_id, device_type, ts=ts, value=float(round(silent)), trigger=trigger,
                          received_at=received_at)

    def _builtin_hit(self, ch: Changes, rule: Rule, device_id: str, device_type: str | None, *, ts: float,
                     value: float | None, trigger: dict, received_at: float | None, **extra) -> None:
        message = render(rule.message_template, device_id=device_id, value=value if value is not None else "",
                         device_type=device_type, metric=rule.kind, threshold="", unit="", **extra)
        st = ch.state((rule.id, device_id))
        ch.hit(rule, st, device_id=device_id, device_type=device_type, ts=ts, value=value, message=message,
               trigger=trigger, received_at=received_at)

    # -- sweeps ---------------------------------------------------------------------------------

    def offline_candidates(self, now: float) -> list[str]:
        """Devices silent for longer than their type's limit."""
        found = []
        for device_id, prog in self.progress.items():
            if not prog.last_seen:
                continue
            rule = self.index.builtin("offline", device_id, prog.device_type)
            if rule is not None and now - self._heard(device_id, prog) >= self.index.offline_limit(
                    rule, prog.device_type, device_id):
                found.append(device_id)
        return found

    def _heard(self, device_id: str, prog: Progress) -> float:
        return max(prog.last_seen, self.claimed.get(device_id, self.started_at))

    def sweep_offline(self, ch: Changes, device_ids: Iterable[str]) -> None:
        """Open (or re-notify) offline events for silent devices."""
        for device_id in device_ids:
            prog = ch.progress.get(device_id) or self.progress.get(device_id)
            rule = self.index.builtin("offline", device_id, prog.device_type) if prog else None
            if rule is None or not prog.last_seen:
                continue
            limit = self.index.offline_limit(rule, prog.device_type, device_id)
            if ch.now - self._heard(device_id, prog) >= limit:
                self._offline(ch, device_id, prog.device_type, silent=ch.now - prog.last_seen, limit=limit,
                              last_seen=prog.last_seen, reason="silent", received_at=None)

    def command_timeouts(self, ch: Changes, expired: Iterable[ExpiredCommand]) -> None:
        """Open (or repeat) command_timeout events for commands that expired unacknowledged."""
        for cmd in expired:
            rule = self.index.builtin("command_timeout", cmd.device_id, cmd.device_type)
            if rule is None:
                continue
            trigger = {"cmd_id": cmd.cmd_id, "cmd": cmd.cmd, "expires_at": iso(cmd.expires_at)}
            self._builtin_hit(ch, rule, cmd.device_id, cmd.device_type, ts=ch.now, value=None, trigger=trigger,
                              received_at=None, cmd=cmd.cmd, cmd_id=cmd.cmd_id)
