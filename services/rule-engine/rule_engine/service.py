"""The rule engine service: evaluates batches and sweeps of its partitions in store transactions; ports are Protocols.

State is held per partition: acquiring one loads its devices' rule state and progress, releasing one drops them.
Every transaction is fenced by the generations of the partitions it writes (see PostgresStore.transaction).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from iothub import topology
from iothub.errors import Unavailable
from rule_engine.changes import Changes, Key
from rule_engine.evaluator import Evaluator, ExpiredCommand
from rule_engine.model import Input, Intervals, Progress, Rule, RuleIndex, RuleState

log = logging.getLogger(__name__)


class StaleRules(Exception):
    """The store disagrees with memory (a rule deleted meanwhile, an open event we did not know): reload, retry."""


class Fenced(Unavailable):
    """A partition this transaction writes was acquired by another replica meanwhile: nothing was written."""


class Misrouted(Exception):
    """An input of a partition this replica does not own (INGEST_PARTITIONS differs between stages)."""


class UnitOfWork(Protocol):
    """What the service does inside one store transaction."""

    def event_statuses(self, event_ids: Sequence[str]) -> dict[str, str]:
        """Current status of these events, locked until commit (the API may change them concurrently)."""

    def expire_commands(self, limit: int, mine: Callable[[str], bool]) -> list[ExpiredCommand]:
        """Mark pending/sent commands past expires_at of the devices `mine` accepts expired and return them."""

    def save(self, changes: Changes) -> None:
        """Write events, outbox rows, rule state and device progress; raises StaleRules on a deleted rule."""


class Store(Protocol):
    """The rule engine's persistence port."""

    def transaction(self, fence: Mapping[int, int] | None = None) -> AbstractContextManager[UnitOfWork]:
        """One atomic unit of work; raises Fenced unless each partition still has the given generation."""

    def claim(self, partition: int) -> int:
        """Acquire a partition: its new generation (the fence of our transactions)."""

    def load_rules(self) -> tuple[list[Rule], dict[str, tuple[int, int]]]:
        """All rules (disabled ones keep their state) and each device type's (send_interval_s, hello_interval_s)."""

    def load_state(self, mine: Callable[[str], bool]) -> tuple[dict[Key, RuleState], dict[str, Progress]]:
        """Persisted rule state (with open events) and device progress of the devices `mine` accepts."""

    def device_intervals(self, device_ids: Sequence[str] | None = None) -> dict[str, Intervals]:
        """The intervals each device's applied configuration sets (all devices that have one, or these)."""


class RuleService:
    """Thread-safe: the consumer thread drives it, tests and metrics read its state under the lock."""

    def __init__(self, store: Store, *, partitions: int = topology.DEFAULT_PARTITIONS,
                 clock: Callable[[], float] = time.time, min_reload_s: float = 2.0, max_rule_age_s: float = 30.0,
                 command_batch: int = 500, persist_seen_s: float = 30.0, offline_max_lag_s: float = 30.0,
                 intervals_refresh_s: float = 30.0):
        self.store = store
        self.partitions = partitions
        self.owned: dict[int, int] = {}  # partition -> generation acquired (the fence of its writes)
        self.clock = clock
        self.min_reload_s = min_reload_s
        self.max_rule_age_s = max_rule_age_s
        self.command_batch = command_batch
        self.persist_seen_s = persist_seen_s
        self.offline_max_lag_s = offline_max_lag_s  # while the input queue lags this much, silence proves nothing
        self.intervals_refresh_s = intervals_refresh_s
        self.lag = 0.0
        self.started_at = clock()
        self._device_intervals: dict[str, Intervals] = {}
        self._intervals_at = -1e18
        self.lock = threading.RLock()
        self.rules_version = 0
        self._dirty = False
        self._loaded_at = 0.0
        self.evaluator = self._evaluator(self._load_index(), {}, {}, {})

    def _evaluator(self, index: RuleIndex, states: dict, progress: dict, claimed: dict[str, float]) -> Evaluator:
        return Evaluator(index, states, progress, started_at=self.started_at, persist_seen_s=self.persist_seen_s,
                         claimed=claimed)

    def _load_evaluator(self) -> Evaluator:
        states, progress = self.store.load_state(lambda device_id: self.partition_of(device_id) in self.owned)
        return self._evaluator(self._load_index(), states, progress, self.evaluator.claimed)

    def partition_of(self, device_id: str) -> int:
        """The partition of a device (as the sequencer routes it)."""
        return topology.partition_of(device_id, self.partitions)

    # -- partitions -------------------------------------------------------------------------------

    def acquire(self, partition: int) -> None:
        """A partition became ours: claim it (fencing its last owner), then load its devices' state."""
        generation = self.store.claim(partition)
        states, progress = self.store.load_state(lambda device_id: self.partition_of(device_id) == partition)
        now = self.clock()
        with self.lock:
            self._keep(lambda device_id: self.partition_of(device_id) != partition, states, progress,
                       dict.fromkeys(progress, now))
            self.owned[partition] = generation

    def release(self, partitions: Collection[int]) -> None:
        """Partitions were handed over: drop their devices' state."""
        with self.lock:
            for partition in partitions:
                self.owned.pop(partition, None)
            self._keep(lambda device_id: self.partition_of(device_id) not in partitions, {}, {}, {})

    def reset(self) -> None:
        """Ownership is unknown (a new connection): drop every partition's state."""
        with self.lock:
            self.owned.clear()
            self.evaluator = self._evaluator(self.evaluator.index, {}, {}, {})

    def _keep(self, keep: Callable[[str], bool], states: dict, progress: dict, claimed: dict) -> None:
        """Rebuild the evaluator from the kept devices' state plus the given (rare: on handovers only)."""
        ev = self.evaluator
        self.evaluator = self._evaluator(
            ev.index, {k: v for k, v in ev.states.items() if keep(k[1])} | states,
            {d: p for d, p in ev.progress.items() if keep(d)} | progress,
            {d: t for d, t in ev.claimed.items() if keep(d)} | claimed)

    def _fence(self, devices: Collection[str]) -> dict[int, int]:
        partitions = {self.partition_of(device_id) for device_id in devices}
        foreign = sorted(partitions - self.owned.keys())
        if foreign:
            raise Misrouted(f"inputs of partitions {foreign}, not owned here (is INGEST_PARTITIONS the same?)")
        return {p: self.owned[p] for p in partitions}

    def _load_index(self) -> RuleIndex:
        self._dirty = False
        self._loaded_at = time.monotonic()
        rules, intervals = self.store.load_rules()
        self.rules_version += 1
        return RuleIndex(rules, intervals, self._device_intervals)

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
        if inputs:
            self.lag = max(0.0, self.clock() - max(inp.received_at for inp in inputs))
        return self._atomically(lambda ev, ch: [ev.process(ch, inp) for inp in inputs],
                                {inp.device_id for inp in inputs})

    def sweep(self, partition: int) -> Changes:
        """Expire unacknowledged commands and detect silent devices, of one partition we own."""
        self.refresh_rules()
        self._refresh_intervals()
        with self.lock:
            behind = self.lag > self.offline_max_lag_s
            devices = set() if behind else {d for d in self.evaluator.offline_candidates(self.clock())
                                             if self.partition_of(d) == partition}
        if devices:  # judge by the configuration as stored now, not as cached up to intervals_refresh_s ago
            fresh = self.store.device_intervals(sorted(devices))
            with self.lock:
                for device_id in devices:
                    self._set_intervals(device_id, fresh.get(device_id))

        def run(ev: Evaluator, ch: Changes, expired: list[ExpiredCommand]) -> None:
            ev.command_timeouts(ch, expired)
            ev.sweep_offline(ch, devices)

        return self._atomically(run, devices, expire=partition)

    def _refresh_intervals(self) -> None:
        now = time.monotonic()
        if now - self._intervals_at < self.intervals_refresh_s:
            return
        fresh = self.store.device_intervals()
        with self.lock:
            self._device_intervals.clear()  # in place: the current RuleIndex holds this very dict
            self._device_intervals.update(fresh)
        self._intervals_at = now

    def _set_intervals(self, device_id: str, intervals: Intervals | None) -> None:
        if intervals is None:
            self._device_intervals.pop(device_id, None)
        else:
            self._device_intervals[device_id] = intervals

    def _atomically(self, work: Callable, devices: set[str], *, expire: int | None = None) -> Changes:
        for _ in range(3):
            self.refresh_rules()
            try:
                with self.lock:
                    fence = self._fence(devices) if expire is None else {expire: self.owned[expire]}
                    with self.store.transaction(fence) as uow:
                        changes = self._evaluate(uow, work, devices, expire)
                    self.evaluator.commit(changes)  # only once the transaction committed
                return changes
            except StaleRules as exc:
                log.warning("store conflict, reloading rules and state", extra={"error": str(exc)[:300]})
                with self.lock:
                    self.evaluator = self._load_evaluator()
        raise StaleRules("rules kept changing under the batch")

    def _evaluate(self, uow: UnitOfWork, work: Callable, devices: set[str], expire: int | None) -> Changes:
        ev = self.evaluator
        expired = [] if expire is None else uow.expire_commands(
            self.command_batch, lambda device_id: self.partition_of(device_id) == expire)
        if expired:
            devices = devices | {c.device_id for c in expired}
        open_states = ev.open_events(devices)
        ids = [st.event.id for st in open_states.values()]
        changes = ev.begin(self.clock(), open_states, uow.event_statuses(ids) if ids else {})
        if expire is not None:
            work(ev, changes, expired)
        else:
            work(ev, changes)
        ev.finish(changes)
        uow.save(changes)
        return changes
