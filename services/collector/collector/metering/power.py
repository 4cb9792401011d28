"""Power per sample instant from a telemetry body (spec v2 "Backend-computed values"); see docs/metering.md."""

from __future__ import annotations

import math
from typing import Any

ACTIVE, APPARENT, REACTIVE = "power_active", "power_apparent", "power_reactive"
UNITS = {ACTIVE: "W", APPARENT: "VA", REACTIVE: "var"}
DERIVED = frozenset(UNITS)
# The measurement types a derivation reads; every other type is left alone.
_INPUTS = frozenset(("voltage_dc", "current_dc", "voltage_ac", "current_ac", "pf"))


def derive(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Derived readings ({ts, type, val, unit}) for every instant that carries a complete set of inputs.

    `body` is a validated telemetry body (iothub.contract.parse: dict items, str ts and type, finite numbers); this
    runs on the ingest hot path once per datagram, so it checks nothing twice.
    """
    at: dict[str, dict[str, float]] = {}
    for m in body.get("measurements") or ():
        kind = m["type"]
        if kind in _INPUTS:
            values = at.get(m["ts"])
            if values is None:
                values = at[m["ts"]] = {}
            values[kind] = m["val"]
    if not at:
        return ()
    out: list[dict[str, Any]] = []
    for ts, v in at.items():
        volts = v.get("voltage_dc")
        if volts is not None and "current_dc" in v:  # the common case first: a DC meter's V/I pair
            out.append({"ts": ts, "type": ACTIVE, "val": float(volts) * v["current_dc"], "unit": "W"})
            continue
        for kind, val in power_at(v):
            out.append({"ts": ts, "type": kind, "val": val, "unit": UNITS[kind]})
    return tuple(out)


def power_at(v: dict[str, float]) -> list[tuple[str, float]]:
    """The powers one instant's inputs define: DC P = V·I; AC P = V·I·PF, S = V·I, Q = sqrt(S² - P²)."""
    if "voltage_dc" in v and "current_dc" in v:
        return [(ACTIVE, v["voltage_dc"] * v["current_dc"])]
    if "voltage_ac" not in v or "current_ac" not in v:
        return []
    s = v["voltage_ac"] * v["current_ac"]
    if "pf" not in v:  # no power factor at this instant: only the apparent power is known
        return [(APPARENT, s)]
    p = s * v["pf"]
    # max(): |PF| <= 1 means S² >= P², but rounding (or a device sending |PF| > 1) must not give sqrt(< 0).
    return [(ACTIVE, p), (APPARENT, s), (REACTIVE, math.sqrt(max(s * s - p * p, 0.0)))]
