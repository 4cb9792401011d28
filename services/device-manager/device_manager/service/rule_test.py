"""Try a threshold rule on recent points: would it have opened an event, and when (the rule engine's semantics:
the condition must hold on consecutive points for at least for_seconds, docs/events.md)."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

OPERATORS = {"gt": operator.gt, "lt": operator.lt, "gte": operator.ge, "lte": operator.le, "eq": operator.eq,
             "neq": operator.ne}


@dataclass(frozen=True)
class Outcome:
    """What the rule would have done on one device's points."""

    device_id: str
    points: int
    matching: int
    fires_at: datetime | None
    last_value: float | None


def evaluate(device_id: str, points: Iterable[tuple[datetime, float]], op: str, threshold: float,
             for_seconds: int) -> Outcome:
    """Walk the points oldest first; the rule fires once a run of matching points lasts for_seconds."""
    test = OPERATORS[op]
    total = matching = 0
    run_start: datetime | None = None
    fires_at: datetime | None = None
    last = None
    for ts, value in points:
        total += 1
        last = value
        if test(value, threshold):
            matching += 1
            run_start = run_start or ts
            if fires_at is None and (ts - run_start).total_seconds() >= for_seconds:
                fires_at = ts
        else:
            run_start = None
    return Outcome(device_id, total, matching, fires_at, last)
