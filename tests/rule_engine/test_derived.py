"""Derived power in rules: an overload threshold on power_active (above 2 MW for 30 s) from the collector's values."""

from __future__ import annotations

import dataclasses

from collector.metering import power
from rule_engine.decode import decode
from tests.rule_engine.helpers import T0, changes_of, engine, ingest, rule, run


def _ac(seq: int, ts: float, amps: float):
    """An AC meter datagram (25 kV, PF 0.9) as the collector publishes it with METERING_DERIVE on."""
    msg = ingest("ac1", "power_meter_ac", seq, ts, [("voltage_ac", 25_000.0, "V"), ("current_ac", amps, "A"),
                                                    ("pf", 0.9, "")])
    return dataclasses.replace(msg, derived=power.derive(msg.body))


def test_overload_above_2_mw_for_30_s_opens_from_derived_power():
    ev = engine(rule(metric="power_active", operator="gt", threshold=2e6, for_seconds=30))
    # 25 kV x 100 A x 0.9 = 2.25 MW: over the threshold; the measured values alone never are.
    script = [(0, 100.0, []), (10, 100.0, []), (20, 100.0, []), (29, 100.0, []), (30, 100.0, ["opened"]),
              (40, 80.0, ["resolved"])]  # 1.8 MW
    for seq, (dt, amps, expected) in enumerate(script):
        inp = decode(_ac(seq, T0 + dt, amps).encode())
        assert changes_of(run(ev, [inp])) == expected, f"+{dt}s at {amps} A"
        if expected == ["opened"]:
            event = ev.states[("r1", "ac1")].event
            assert (event.first_ts, event.last_value) == (T0, 25_000.0 * 100.0 * 0.9)


def test_without_derived_values_the_rule_sees_no_power():
    ev = engine(rule(metric="power_active", operator="gt", threshold=2e6))
    msg = ingest("ac1", "power_meter_ac", 1, T0, [("voltage_ac", 25_000.0, "V"), ("current_ac", 100.0, "A")])
    assert changes_of(run(ev, [decode(msg.encode())])) == []
