"""Metering domain against hand-computed values: power formulas, trapezoid energy, gaps, duplicates, late data."""

from __future__ import annotations

import pytest

from collector.metering import energy, power
from collector.metering.energy import Sample

GAP = 3.0  # 3 x the 1 s sampling interval
BUCKET = 300.0


def _total(samples, existing=()):
    return energy.total(energy.plan(existing, samples, BUCKET, GAP).segments)


def _m(ts, kind, val, unit=None):
    item = {"ts": ts, "type": kind, "val": val}
    return {**item, "unit": unit} if unit else item


def test_dc_power_is_v_times_i_per_instant():
    body = {"measurements": [_m("t1", "voltage_dc", 756.3, "V"), _m("t1", "current_dc", 312.8, "A"),
                             _m("t2", "voltage_dc", 754.1, "V"), _m("t2", "current_dc", -315.2, "A"),
                             _m("t3", "voltage_dc", 750.0, "V")]}  # no current at t3: no power
    assert power.derive(body) == (
        {"ts": "t1", "type": "power_active", "val": pytest.approx(236570.64), "unit": "W"},
        {"ts": "t2", "type": "power_active", "val": pytest.approx(-237692.32), "unit": "W"},
    )


def test_ac_power_apparent_and_reactive():
    body = {"measurements": [_m("t1", "voltage_ac", 25000, "V"), _m("t1", "current_ac", 100, "A"),
                             _m("t1", "frequency", 50.0, "Hz"), _m("t1", "pf", 0.8),
                             _m("t2", "voltage_ac", 25000, "V"), _m("t2", "current_ac", 100, "A")]}
    got = {(d["ts"], d["type"]): (d["val"], d["unit"]) for d in power.derive(body)}
    assert got == {("t1", "power_active"): (pytest.approx(2e6), "W"),
                   ("t1", "power_apparent"): (pytest.approx(2.5e6), "VA"),
                   ("t1", "power_reactive"): (pytest.approx(1.5e6), "var"),
                   ("t2", "power_apparent"): (pytest.approx(2.5e6), "VA")}  # no pf at t2: only S


def test_reactive_power_never_takes_a_negative_root():
    [(_, p), (_, s), (_, q)] = power.power_at({"voltage_ac": 100.0, "current_ac": 10.0, "pf": 1.0000001})
    assert (p, s, q) == (pytest.approx(1000.0001), 1000.0, 0.0)


def test_incomplete_instants_and_other_types_derive_nothing():
    assert power.derive({}) == ()
    assert power.derive({"measurements": [_m("t", "voltage_dc", 750.0, "V"), _m("u", "current_dc", 1.0, "A"),
                                          _m("t", "temperature", 30.0, "Cel"), _m("t", "current_ac", 5.0, "A")]}) == ()


def test_constant_load():
    # 750 V x 400 A = 300 kW for 600 s = 50 kWh, all of it backed by samples.
    got = _total([Sample(float(t), 300e3) for t in range(601)])
    assert got.consumed_wh == pytest.approx(50_000.0)
    assert (got.regenerated_wh, got.covered_s) == (0.0, 600.0)


def test_ramp_is_exact_under_the_trapezoid_rule():
    # 0 -> 1 MW linearly over 300 s: 1/2 x 1 MW x 300 s = 41,666.67 Wh.
    got = _total([Sample(float(t), 1e6 * t / 300) for t in range(301)])
    assert got.consumed_wh == pytest.approx(1e6 * 300 / 2 / 3600, rel=1e-12)


def test_regeneration_is_kept_apart_and_split_at_the_zero_crossing():
    # +1000 W for 10 s, a crossing segment 1000 -> -500 W (zero at 2/3 s), then -500 W for 9 s.
    samples = [Sample(float(t), 1000.0 if t <= 10 else -500.0) for t in range(21)]
    got = _total(samples)
    assert got.consumed_wh == pytest.approx((10 * 1000 + 1000 / 2 * 2 / 3) / 3600)
    assert got.regenerated_wh == pytest.approx((9 * 500 + 500 / 2 * 1 / 3) / 3600)
    assert got.covered_s == pytest.approx(20.0)


def test_a_gap_longer_than_the_limit_is_uncovered_not_invented():
    # 3600 W on 0..10 s and 20..30 s: 20 s integrated = 20 Wh; the 10 s silence counts nothing.
    samples = [Sample(float(t), 3600.0) for t in [*range(11), *range(20, 31)]]
    got = _total(samples)
    assert (got.consumed_wh, got.covered_s) == (pytest.approx(20.0), 20.0)
    # A gap of exactly the limit (3 s) is still integrated.
    assert _total([Sample(0.0, 3600.0), Sample(3.0, 3600.0)]).consumed_wh == pytest.approx(3.0)


def test_duplicates_and_redeliveries_plan_nothing():
    stored = [Sample(float(t), 500.0) for t in range(10)]
    assert energy.plan(stored, stored[3:6], BUCKET, GAP).segments == []


def test_late_sample_rewrites_its_segment_and_its_successors():
    stored = [Sample(0.0, 1000.0), Sample(2.0, 1000.0)]
    late = energy.plan(stored, [Sample(1.0, 4000.0)], BUCKET, GAP)
    assert [s.sample.t for s in late.segments] == [1.0, 2.0]
    # Corrected: 0->1 is (1000+4000)/2, 1->2 the same, instead of 2 s at 1000 W.
    assert energy.total(late.segments).consumed_wh == pytest.approx(5000 / 3600)


def test_out_of_order_arrival_gives_the_in_order_total():
    samples = [Sample(float(t), 100.0 * t) for t in range(40)]
    first = energy.plan([], samples[20:], BUCKET, GAP)
    second = energy.plan(samples[20:], samples[:20], BUCKET, GAP)
    rows = {s.sample.t: s for s in first.segments} | {s.sample.t: s for s in second.segments}
    assert energy.total(list(rows.values())).consumed_wh == pytest.approx(_total(samples).consumed_wh)


def test_a_segment_across_a_bucket_edge_is_split_there():
    seg = energy.segment(Sample(299.5, 1000.0), Sample(300.5, 3000.0), BUCKET, GAP)
    assert seg.carry.consumed_wh == pytest.approx((1000 + 2000) / 2 * 0.5 / 3600)  # 299.5..300 in bucket 0
    assert seg.own.consumed_wh == pytest.approx((2000 + 3000) / 2 * 0.5 / 3600)  # 300..300.5 in bucket 300
    assert (seg.carry.covered_s, seg.own.covered_s) == (0.5, 0.5)
    assert energy.plan([], [seg.sample, Sample(299.5, 1000.0)], BUCKET, GAP).buckets == {0.0, 300.0}


def test_ac_energy_apparent_and_reactive():
    # 2 MW, 2.5 MVA, 1.5 Mvar for 300 s.
    got = _total([Sample(float(t), 2e6, 2.5e6, 1.5e6) for t in range(301)])
    assert (got.consumed_wh, got.apparent_vah, got.reactive_varh) == (
        pytest.approx(2e6 / 12), pytest.approx(2.5e6 / 12), pytest.approx(1.5e6 / 12))
