"""Fault schedule: which telemetry ticks duplicate, skip seqs, reboot, send garbage or out-of-range readings."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import orjson

from simulator.values import METRICS, out_of_range

MALFORMED_KINDS = ("bad_json", "nan", "wrong_type", "too_many_measurements")


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probability per telemetry tick of each fault (0 disables it)."""

    duplicate: float = 0.0
    gap: float = 0.0
    reboot: float = 0.0
    malformed: float = 0.0
    out_of_range: float = 0.0
    max_gap: int = 5

    @property
    def any(self) -> bool:
        """Whether any fault is enabled."""
        return any((self.duplicate, self.gap, self.reboot, self.malformed, self.out_of_range))


@dataclass(frozen=True, slots=True)
class Faults:
    """What to do on one telemetry tick."""

    reboot: bool = False
    gap: int = 0  # seq numbers to skip before this datagram
    malformed: str | None = None  # an extra broken message sent before this datagram
    out_of_range: bool = False
    duplicate: bool = False  # re-send this datagram right after it


NONE = Faults()


def decide(rates: FaultRates, rng: random.Random) -> Faults:
    """Roll the dice for one tick."""
    if not rates.any:
        return NONE
    return Faults(
        reboot=rng.random() < rates.reboot,
        gap=rng.randint(1, rates.max_gap) if rng.random() < rates.gap else 0,
        malformed=rng.choice(MALFORMED_KINDS) if rng.random() < rates.malformed else None,
        out_of_range=rng.random() < rates.out_of_range,
        duplicate=rng.random() < rates.duplicate,
    )


def corrupt_reading(body: dict[str, Any], device_type: str, rng: random.Random) -> str:
    """Replace one reading of a telemetry body with an out-of-range value; returns the metric's name."""
    item = rng.choice(body["measurements"])
    metric = next(m for m in METRICS[device_type] if m.type == item["type"])
    item["val"] = out_of_range(metric, rng)
    return metric.type


def malformed(kind: str, body: dict[str, Any]) -> bytes:
    """Bytes of a broken version of a valid telemetry body; the body itself is left untouched."""
    if kind == "bad_json":
        return orjson.dumps(body)[:-7]  # cut mid-object, as a truncated write does
    if kind == "nan":
        first = dict(body["measurements"][0], val=float("nan"))
        return json.dumps({**body, "measurements": [first, *body["measurements"][1:]]}).encode()
    if kind == "wrong_type":
        return orjson.dumps({**body, "seq": str(body["seq"])})
    if kind == "too_many_measurements":
        items = body["measurements"]
        return orjson.dumps({**body, "measurements": (items * (201 // len(items) + 1))[:201]})
    raise ValueError(f"unknown malformed kind {kind!r}")
