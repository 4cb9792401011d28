"""Energy writer: power samples of telemetry datagrams into per-sample segments and fixed buckets (docs/metering.md).

Every figure is recomputed from stored samples, so the writer is idempotent (a redelivery or duplicate datagram
changes no sample and plans nothing) and robust to late or corrected data (a sample landing anywhere rewrites its
own segment and its successor's, then re-sums the buckets they touch).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from collector.metering import energy, power
from collector.writers import metrics
from collector.writers.decode import DeliveryLike, decode_batch, parse_time
from iothub.contract.ingest import IngestMessage
from iothub.errors import Rejected

WRITER = "energy"


@dataclass(frozen=True, slots=True)
class Window:
    """Stored samples of one device wanted around new ones: [lo, hi] in epoch seconds."""

    device_id: str
    lo: float
    hi: float


class EnergySession(Protocol):
    """One transaction holding the devices' locks (collector.writers.energy_postgres)."""

    def samples(self, windows: Sequence[Window]) -> dict[str, list[energy.Sample]]: ...
    def write(self, segments: dict[str, Sequence[energy.Segment]]) -> None: ...
    def refresh(self, buckets: dict[str, tuple[str, Sequence[float]]]) -> None: ...


class EnergyStore(Protocol):
    """Where samples, segments and buckets live; raises Unavailable while it is down."""

    def session(self, device_ids: Sequence[str]) -> AbstractContextManager[EnergySession]: ...


def samples_of(msg: IngestMessage) -> Iterator[energy.Sample]:
    """Power samples of a datagram: the collector's derived values, or derived here when ingest had it switched off."""
    at: dict[str, dict[str, float]] = {}
    for m in msg.derived or power.derive(msg.body):
        at.setdefault(m["ts"], {})[m["type"]] = float(m["val"])
    for ts, v in at.items():
        yield energy.Sample(parse_time(ts).timestamp(), v.get(power.ACTIVE), v.get(power.APPARENT),
                            v.get(power.REACTIVE))


class EnergyWriter:
    """Batch handler: stores power samples and keeps energy buckets equal to the sum of their segments."""

    def __init__(self, store: EnergyStore, *, bucket_s: float, max_gap: float):
        if not 0 < max_gap <= bucket_s:  # a segment may then cross one bucket edge at most (energy.segment)
            raise ValueError(f"max gap {max_gap} s must be positive and at most the bucket {bucket_s} s")
        if 3600 % bucket_s:  # the API sums buckets into whole hours
            raise ValueError(f"bucket {bucket_s} s must divide an hour")
        self._store = store
        self._bucket_s = bucket_s
        self._max_gap = max_gap

    def __call__(self, batch: Sequence[DeliveryLike]) -> dict[int, Rejected]:
        """Integrate a batch; returns the messages that can never be used."""
        started = time.monotonic()
        decoded, rejected = decode_batch(batch)
        new: dict[str, dict[float, energy.Sample]] = {}
        types: dict[str, str] = {}
        for item in decoded:
            if item.msg.msg_type != "telemetry":
                continue
            try:
                found = list(samples_of(item.msg))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                rejected[item.index] = Rejected("bad_value", f"power sample: {exc}"[:500])
                continue
            types[item.msg.device_id] = item.msg.device_type
            new.setdefault(item.msg.device_id, {}).update((s.t, s) for s in found)
        new = {d: s for d, s in new.items() if s}
        if new:
            self._apply(new, types)
        metrics.BATCH_SIZE.labels(WRITER).observe(len(batch))
        metrics.BATCH_SECONDS.labels(WRITER).observe(time.monotonic() - started)
        return rejected

    def _apply(self, new: dict[str, dict[float, energy.Sample]], types: dict[str, str]) -> None:
        windows = [Window(d, min(s) - self._max_gap, max(s) + self._max_gap) for d, s in new.items()]
        with self._store.session(sorted(new)) as tx:
            stored = tx.samples(windows)
            segments, buckets = {}, {}
            for device_id, samples in new.items():
                plan = energy.plan(stored.get(device_id, ()), samples.values(), self._bucket_s, self._max_gap)
                if not plan.segments:
                    metrics.SKIPPED.labels(WRITER, "duplicate").inc()
                    continue
                segments[device_id] = plan.segments
                buckets[device_id] = (types[device_id], plan.buckets)
            if segments:  # a batch's statements cover all its devices: per-device round trips were its cost
                tx.write(segments)
                tx.refresh(buckets)
                metrics.WRITTEN.labels(WRITER, "samples").inc(sum(len(g) for g in segments.values()))
