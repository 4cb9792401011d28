"""Readings stay in each type's realistic band, with names and units from the device_types rows."""

from __future__ import annotations

import random

import pytest

from simulator.values import METRICS, ValueModel, out_of_range, type_for_index

BANDS = {
    "power_meter_dc": {"voltage_dc": ("V", 700, 800), "current_dc": ("A", 200, 400),
                       "temperature": ("Cel", 20, 60)},
    "power_meter_ac": {"voltage_ac": ("V", 24000, 26000), "current_ac": ("A", 100, 200),
                       "frequency": ("Hz", 49.9, 50.1), "pf": ("", 0.92, 0.99), "thd_v": ("%", 0, 15),
                       "thd_i": ("%", 0, 15)},
}


@pytest.mark.parametrize("device_type", sorted(BANDS))
def test_readings_stay_in_band_and_move(device_type):
    rng = random.Random(1)
    model = ValueModel(device_type, rng)
    series = [model.step(rng) for _ in range(5000)]
    bands = BANDS[device_type]
    assert [(m.type, m.unit) for m in model.metrics] == [(k, v[0]) for k, v in bands.items()]
    for i, m in enumerate(model.metrics):
        values = [row[i] for row in series]
        _, low, high = bands[m.type]
        assert low <= min(values) and max(values) <= high, m.type
        assert len(set(values)) > 50, f"{m.type} barely changes"


def test_units_match_the_schema_seed():
    from pathlib import Path

    sql = (Path(__file__).resolve().parents[2] / "libs/iothub/iothub/db/migrations/0001_core.sql").read_text()
    for metrics in METRICS.values():
        for m in metrics:
            assert f'{{"type": "{m.type}", "unit": "{m.unit}", "min": {m.min:g}, "max": {m.max:g}}}' in sql


def test_out_of_range_breaks_the_hard_limits():
    rng = random.Random(2)
    for metrics in METRICS.values():
        for m in metrics:
            values = [out_of_range(m, rng) for _ in range(50)]
            assert all(v > m.max or v < m.min for v in values), m.type


def test_type_mix_follows_weights_and_is_deterministic():
    mix = (("power_meter_dc", 3.0), ("power_meter_ac", 1.0))
    types = [type_for_index(i, mix) for i in range(4000)]
    assert types == [type_for_index(i, mix) for i in range(4000)]
    assert 0.72 < types.count("power_meter_dc") / 4000 < 0.78
    assert {type_for_index(i, (("power_meter_ac", 1.0),)) for i in range(100)} == {"power_meter_ac"}
