"""Energy from power samples: trapezoid rule between neighbouring samples, split at bucket edges and zero crossings.

Each sample carries the energy of the segment that ends at it (from the previous sample): `own` is the part inside
the sample's bucket, `carry` the part before that bucket's start (it belongs to the previous bucket). A bucket is
the sum of its samples' `own` plus the next bucket's `carry`, so every figure is a sum and recomputing is local.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Sample:
    """Power at one instant (epoch seconds); None where the device's inputs do not define that power."""

    t: float
    p: float | None = None  # active W (negative: regeneration)
    s: float | None = None  # apparent VA
    q: float | None = None  # reactive var


@dataclass(frozen=True, slots=True)
class Amounts:
    """Energy of a stretch of time and how much of it samples backed."""

    consumed_wh: float = 0.0
    regenerated_wh: float = 0.0  # positive figure for energy returned (negative active power)
    apparent_vah: float = 0.0
    reactive_varh: float = 0.0
    covered_s: float = 0.0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.consumed_wh + other.consumed_wh, self.regenerated_wh + other.regenerated_wh,
                       self.apparent_vah + other.apparent_vah, self.reactive_varh + other.reactive_varh,
                       self.covered_s + other.covered_s)


ZERO = Amounts()


@dataclass(frozen=True, slots=True)
class Segment:
    """The energy stored on a sample: of the segment ending at it, split at its bucket's start."""

    sample: Sample
    own: Amounts
    carry: Amounts


@dataclass(slots=True)
class Plan:
    """What one batch of new samples changes: sample rows to write and buckets (starts) to re-sum."""

    segments: list[Segment] = field(default_factory=list)
    buckets: set[float] = field(default_factory=set)


def bucket_of(t: float, bucket_s: float) -> float:
    """Start of the epoch-aligned bucket holding t."""
    return math.floor(t / bucket_s) * bucket_s


def _lerp(a: float, b: float, ta: float, tb: float, t: float) -> float:
    return a + (b - a) * (t - ta) / (tb - ta)


def _active(p0: float, p1: float, dt: float) -> tuple[float, float]:
    """(consumed, regenerated) W·s of a linear stretch; split exactly where it crosses zero."""
    if p0 >= 0 and p1 >= 0:
        return (p0 + p1) / 2 * dt, 0.0
    if p0 <= 0 and p1 <= 0:
        return 0.0, -(p0 + p1) / 2 * dt
    cross = dt * p0 / (p0 - p1)  # time from the start to the zero crossing
    if p0 > 0:
        return p0 / 2 * cross, -p1 / 2 * (dt - cross)
    return p1 / 2 * (dt - cross), -p0 / 2 * cross


def between(a: Sample, b: Sample, lo: float, hi: float, max_gap: float) -> Amounts:
    """Energy of the segment a -> b inside [lo, hi]; nothing when the samples lie more than max_gap apart."""
    dt = b.t - a.t
    lo, hi = max(lo, a.t), min(hi, b.t)
    if dt <= 0 or dt > max_gap or hi <= lo:
        return ZERO
    span = hi - lo
    consumed = regenerated = apparent = reactive = covered = 0.0
    if a.p is not None and b.p is not None:
        consumed, regenerated = _active(_lerp(a.p, b.p, a.t, b.t, lo), _lerp(a.p, b.p, a.t, b.t, hi), span)
        covered = span
    if a.s is not None and b.s is not None:
        apparent = (_lerp(a.s, b.s, a.t, b.t, lo) + _lerp(a.s, b.s, a.t, b.t, hi)) / 2 * span
        covered = span
    if a.q is not None and b.q is not None:
        reactive = (_lerp(a.q, b.q, a.t, b.t, lo) + _lerp(a.q, b.q, a.t, b.t, hi)) / 2 * span
    h = SECONDS_PER_HOUR
    return Amounts(consumed / h, regenerated / h, apparent / h, reactive / h, covered)


def segment(prev: Sample | None, sample: Sample, bucket_s: float, max_gap: float) -> Segment:
    """The energy stored on `sample`: its segment from `prev`, split at the start of its bucket."""
    if prev is None:
        return Segment(sample, ZERO, ZERO)
    start = bucket_of(sample.t, bucket_s)
    return Segment(sample, between(prev, sample, start, sample.t, max_gap),
                   between(prev, sample, prev.t, start, max_gap))


def plan(existing: Iterable[Sample], new: Iterable[Sample], bucket_s: float, max_gap: float) -> Plan:
    """Segments to (re)write after `new` samples land among `existing` ones (those within max_gap of them).

    A sample that changes nothing (a redelivery, a duplicate datagram) plans nothing, so it never counts twice.
    """
    merged = {s.t: s for s in existing}
    changed = set()
    for s in new:
        if merged.get(s.t) != s:
            merged[s.t] = s
            changed.add(s.t)
    out = Plan()
    if not changed:
        return out
    order = sorted(merged)
    index = {t: i for i, t in enumerate(order)}
    touched = set()
    for t in changed:  # a sample's own segment, and its successor's, which starts at it
        i = index[t]
        touched.update(j for j in (i, i + 1) if j < len(order))
    for i in sorted(touched):
        prev = merged[order[i - 1]] if i > 0 else None
        seg = segment(prev, merged[order[i]], bucket_s, max_gap)
        out.segments.append(seg)
        out.buckets.add(bucket_of(seg.sample.t, bucket_s))
        if prev is not None:
            out.buckets.add(bucket_of(prev.t, bucket_s))  # the carry lands there
    return out


def total(segments: Sequence[Segment]) -> Amounts:
    """Sum of the segments' energy (own and carry)."""
    acc = ZERO
    for seg in segments:
        acc = acc + seg.own + seg.carry
    return acc
