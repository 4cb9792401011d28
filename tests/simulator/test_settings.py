"""Flags override environment variables, which override defaults; nonsense is refused."""

from __future__ import annotations

import pytest

from iothub.settings import Env, SettingsError
from simulator import settings
from tests.simulator.conftest import make_settings


def test_environment_then_flags():
    s = make_settings(SIM_DEVICES="7", MQTT_PORT="11883", SIM_GAP_RATE="0.25", SIM_TYPE_MIX="power_meter_ac")
    assert (s.devices, s.mqtt_port, s.faults.gap, s.type_mix) == (7, 11883, 0.25, (("power_meter_ac", 1.0),))
    s = make_settings("provision", "--count", "3", "--mqtt-port", "1", SIM_DEVICES="7", MQTT_PORT="11883")
    assert (s.command, s.devices, s.mqtt_port) == ("provision", 3, 1)
    assert s.device_id(42) == "sim-000042"


def test_every_environment_name_is_recorded():
    env = Env({})
    settings.load([], env)
    assert {"MQTT_HOST", "MQTT_PORT", "MQTT_USERNAME", "SIM_DEVICES", "SIM_RATE", "SIM_SEED", "SIM_LEDGER",
            "METRICS_PORT", "DATABASE_URL", "IOTHUB_ENV"} <= env.names


@pytest.mark.parametrize("flags", [("--type-mix", "toaster"), ("--type-mix", "power_meter_dc:0"),
                                   ("--send-interval", "0"), ("--sampling-interval", "-1")])
def test_nonsense_is_refused(flags):
    with pytest.raises(SettingsError):
        make_settings(*flags)
