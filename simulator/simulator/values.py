"""Realistic readings per device type: bounded mean-reverting random walks."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured quantity: its normal band and the device type's hard limits (0001_core.sql)."""

    type: str
    unit: str
    low: float
    high: float
    min: float
    max: float
    digits: int


# Names, units and hard limits exactly as in the device_types rows of 0001_core.sql.
METRICS: dict[str, tuple[Metric, ...]] = {
    "power_meter_dc": (
        Metric("voltage_dc", "V", 700.0, 800.0, 0.0, 1500.0, 1),
        Metric("current_dc", "A", 200.0, 400.0, -1000.0, 1000.0, 1),
        Metric("temperature", "Cel", 25.0, 55.0, -40.0, 125.0, 1),
    ),
    "power_meter_ac": (
        Metric("voltage_ac", "V", 24000.0, 26000.0, 0.0, 30000.0, 0),
        Metric("current_ac", "A", 100.0, 200.0, 0.0, 1000.0, 1),
        Metric("frequency", "Hz", 49.9, 50.1, 45.0, 55.0, 3),
        Metric("pf", "", 0.92, 0.99, 0.0, 1.0, 3),
        Metric("thd_v", "%", 1.0, 5.0, 0.0, 100.0, 2),
        Metric("thd_i", "%", 2.0, 8.0, 0.0, 100.0, 2),
    ),
}
DEVICE_TYPES = tuple(METRICS)


class ValueModel:
    """Current readings of one device (its type's metrics, or those of them in `types`); each step drifts them and
    pulls them back to the band's middle."""

    __slots__ = ("metrics", "values")

    def __init__(self, device_type: str, rng: random.Random, types: tuple[str, ...] | None = None):
        self.metrics = tuple(m for m in METRICS[device_type] if types is None or m.type in types)
        self.values = [rng.uniform(m.low, m.high) for m in self.metrics]

    def step(self, rng: random.Random) -> list[float]:
        """Advance one sample and return the rounded readings, all inside each metric's normal band."""
        out = []
        for i, m in enumerate(self.metrics):
            span = m.high - m.low
            v = self.values[i]
            v += ((m.low + m.high) / 2 - v) * 0.05 + rng.gauss(0.0, span * 0.04)
            v = min(max(v, m.low), m.high)
            self.values[i] = v
            out.append(round(v, m.digits))
        return out


def out_of_range(metric: Metric, rng: random.Random) -> float:
    """A finite reading beyond the type's hard limits (what a broken sensor sends)."""
    span = metric.max - metric.min
    if rng.random() < 0.5:
        return round(metric.max + span * rng.uniform(0.05, 0.5), metric.digits)
    return round(metric.min - span * rng.uniform(0.05, 0.5), metric.digits)


def type_for_index(index: int, mix: tuple[tuple[str, float], ...]) -> str:
    """Deterministic device type of fleet member `index`, so `provision` and `run` agree without a seed."""
    total = sum(w for _, w in mix)
    point = (index * 0.6180339887498949) % 1.0 * total  # golden-ratio spread: well mixed for any count
    acc = 0.0
    for name, weight in mix:
        acc += weight
        if point < acc:
            return name
    return mix[-1][0]
