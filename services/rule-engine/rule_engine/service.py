"""The rule engine service: evaluates batches and sweeps in store transactions; ports are Protocols."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from rule_engine.changes import Changes, Key
from rule_engine.evaluator import Evaluator, ExpiredCommand
from rule_engine.model import Input, Progress, Rule, RuleIndex, RuleState


class StaleRules(Exception):
    """A rule referenced by the batch was deleted meanwhile: reload the rules and evaluate again."""


class UnitOfWork(Protocol):
    """What the service does inside one store transaction."""

    def event_statuses(self, event_ids: Sequence[str]) -> dict[str, str]:
        """Current status of these events, locked until commit (the API may change them concurrently)."""

    def expire_commands(self, limit: int) -> list[ExpiredCommand]:
        """Mark pending/sent commands past expires_at expired and return them."""

    def save(self, changes: Changes) -> None:
        """Write events, outbox rows, rule state and device progress; raises StaleRules on a deleted rule."""


class Store(Protocol):
    """The rule engine's persistence port."""

    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """One atomic unit of work."""

    def load_rules(self) -> tuple[list[Rule], dict[str, tuple[int, int]]]:
        """Enabled rules and each device type's (send_interval_s, hello_interval_s)."""

    def load_state(self) -> tuple[dict[Key, RuleState], dict[str, Progress]]:
        """Persisted rule state (with open events) and device progress."""


class RuleService:
    """Thread-safe: the consumer thread and the sweeper share one in-memory state under a lock."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time, min_reload_s: float = 2.0,
                 max_rule_age_s: float = 30.0, command_batch: int = 500):
        self.store = store
        self.clock = clock
        self.min_reload_s = min_reload_s
        self.max_rule_age_s = max_rule_age_s
        self.command_batch = command_batch
        self.lock = threading.RLock()
        self.rules_version = 0
        self._dirty = False
        self._loaded_at = 0.0
        states, progress = store.load_state()
        self.evaluator = Evaluator(self._load_index(), states, progress)

    def _load_index(self) -> RuleIndex:
        self._dirty = False
        self._loaded_at = time.monotonic()
        rules, intervals = self.store.load_rules()
        self.rules_version += 1
        return RuleIndex(rules, intervals)

    def rules_changed(self) -> None:
        """A rules-changed notice arrived: reload soon (debounced)."""
        self._dirty = True

    def refresh_rules(self, *, force: bool = False) -> bool:
        """Reload rules when a notice asked for it (at most every min_reload_s) or when they are old."""
        age = time.monotonic() - self._loaded_at
        if not (force or (self._dirty and age >= self.min_reload_s) or age >= self.max_rule_age_s):
            return False
        with self.lock:
            index = self._load_index()
            self.evaluator.index = index
            self.evaluator.drop_rules(set(index.rules))
        return True

    def handle(self, inputs: Sequence[Input]) -> Changes:
        """Evaluate a batch (sorted by device, epoch, seq) and store every change in one transaction."""
        return self._atomically(lambda ev, ch: [ev.process(ch, inp) for inp in inputs],
                                {inp.device_id for inp in inputs})

    def sweep(self) -> Changes:
        """Expire unacknowledged commands and detect silent devices."""
        self.refresh_rules()
        with self.lock:
            devices = set(self.evaluator.offline_candidates(self.clock()))

        def run(ev: Evaluator, ch: Changes, expired: list[ExpiredCommand]) -> None:
            ev.command_timeouts(ch, expired)
            ev.sweep_offline(ch, devices)

        return self._atomically(run, devices, expire=True)

    def _atomically(self, work: Callable, devices: set[str], *, expire: bool = False) -> Changes:
        for attempt in range(3):
            self.refresh_rules(force=attempt > 0)
            try:
                with self.lock:
                    with self.store.transaction() as uow:
                        changes = self._evaluate(uow, work, devices, expire)
                    self.evaluator.commit(changes)  # only once the transaction committed
                return changes
            except StaleRules:
                continue
        raise StaleRules("rules kept changing under the batch")

    def _evaluate(self, uow: UnitOfWork, work: Callable, devices: set[str], expire: bool) -> Changes:
        ev = self.evaluator
        expired = uow.expire_commands(self.command_batch) if expire else []
        if expired:
            devices = devices | {c.device_id for c in expired}
        open_states = ev.open_events(devices)
        ids = [st.event.id for st in open_states.values()]
        changes = ev.begin(self.clock(), open_states, uow.event_statuses(ids) if ids else {})
        if expire:
            work(ev, changes, expired)
        else:
            work(ev, changes)
        uow.save(changes)
        return changes
