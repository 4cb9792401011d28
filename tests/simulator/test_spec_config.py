"""The spec profile's pure parts: update_config keys and ranges, start_ota spellings, settings, timestamps."""

from __future__ import annotations

import uuid

import pytest

from iothub.settings import SettingsError
from simulator import commands
from simulator.config import DeviceConfig
from simulator.ota import parse_request
from simulator.profile import IOTHUB, SPEC, iso_seconds
from tests.simulator.conftest import SHA, SPEC_OTA, A, B, brokers, make_settings

# -- update_config keys and ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "field", "value"), [
    ({"sampling_cadence_ms": 100}, "sampling_interval_s", 0.1),
    ({"sampling_cadence_ms": 60000}, "sampling_interval_s", 60.0),
    ({"sampling_interval_s": 2, "sampling_cadence_ms": 500}, "sampling_interval_s", 0.5),  # the spec key wins
    ({"send_interval_s": 1}, "send_interval_s", 1.0),
    ({"send_interval_s": 3600}, "send_interval_s", 3600.0),
    ({"hello_interval_s": 5}, "hello_interval_s", 5.0),
    ({"hello_interval_s": 3600}, "hello_interval_s", 3600.0),
    ({"brokers": brokers(1883)}, "brokers", (A,)),
    ({"brokers": brokers(1, 2, 3, 4, 5)}, "brokers", tuple(("127.0.0.1", p) for p in range(1, 6))),
    ({"tls_enabled": True}, "tls_enabled", True),
    ({"samples_per_datagram": 4}, "samples_per_datagram", 4),
])
def test_spec_keys_within_range_are_applied(params, field, value):
    new, notes, ignored = DeviceConfig().updated(params, spec=True)
    assert getattr(new, field) == value and not ignored
    assert notes and all(" updated to " in n for n in notes)


@pytest.mark.parametrize(("key", "value"), [
    ("sampling_cadence_ms", 99), ("sampling_cadence_ms", 60001), ("sampling_cadence_ms", 1000.5),
    ("sampling_cadence_ms", "1000"), ("sampling_cadence_ms", True),
    ("send_interval_s", 0.5), ("send_interval_s", 3601), ("send_interval_s", "5"), ("send_interval_s", None),
    ("hello_interval_s", 4), ("hello_interval_s", 3601), ("hello_interval_s", float("nan")),
    ("brokers", []), ("brokers", brokers(1, 2, 3, 4, 5, 6)), ("brokers", [{"host": "a"}]),
    ("brokers", [{"host": " ", "port": 1}]), ("brokers", [{"host": "a", "port": 70000}]), ("brokers", "a:1"),
    ("brokers", brokers(1883, 1883)), ("tls_enabled", "yes"), ("tls_enabled", 1),
    ("samples_per_datagram", -1), ("sampling_interval_s", 0),
])
def test_spec_keys_out_of_range_or_mistyped_are_refused_by_name(key, value):
    with pytest.raises(ValueError, match=key):
        DeviceConfig().updated({key: value}, spec=True)


def test_iothub_profile_keeps_its_looser_intervals_and_takes_the_spec_keys():
    new, _, _ = DeviceConfig().updated({"send_interval_s": 0.2, "hello_interval_s": 1, "tls_enabled": True,
                                        "brokers": brokers(1884)})
    assert (new.send_interval_s, new.hello_interval_s, new.tls_enabled, new.brokers) == (0.2, 1.0, True, (B,))
    with pytest.raises(ValueError, match="sampling_cadence_ms"):
        DeviceConfig().updated({"sampling_cadence_ms": 50})


def decide(params: dict, profile=SPEC) -> commands.Decision:
    body = {"v": 2, "cmd_id": str(uuid.uuid4()), "cmd": "update_config", "params": params}
    return commands.decide(body, DeviceConfig(), False, profile)


def test_update_config_details_per_profile():
    assert decide({"send_interval_s": 5}).detail == "send_interval_s updated to 5"  # the spec's example
    nested = decide({"config": {"hello_interval_s": 30, "brokers": brokers(1883, 1884)}, "version": 3, "x": 1})
    assert (nested.result, nested.detail) == ("accepted", "hello_interval_s updated to 30; brokers updated to "
                                                          "127.0.0.1:1883,127.0.0.1:1884; ignored: x")
    assert nested.config.brokers == (A, B)
    rejected = decide({"send_interval_s": 5, "sampling_cadence_ms": 10})
    assert rejected.result == "rejected" and "sampling_cadence_ms" in rejected.detail and rejected.config is None
    assert decide({"send_interval_s": 5, "color": 1}, IOTHUB).detail == "ignored: color"  # today's detail
    assert decide({"send_interval_s": 0.5}, IOTHUB).result == "accepted"
    assert decide({"send_interval_s": 0.5}).result == "rejected"


# -- start_ota spellings -------------------------------------------------------------------------------------


def test_start_ota_takes_the_spec_and_the_legacy_names():
    spec = parse_request(SPEC_OTA)
    legacy = parse_request({"fw_version": "2.2.0", "url": SPEC_OTA["fw_url"], "sha256": SHA, "size": 524288})
    assert spec == legacy and (spec.url, spec.sha256, spec.size) == (SPEC_OTA["fw_url"], SHA, 524288)
    mixed = parse_request({**SPEC_OTA, "url": "https://other.example/x.bin"})
    assert mixed.url == SPEC_OTA["fw_url"]  # the spec's name wins


@pytest.mark.parametrize(("params", "named"), [
    ({**SPEC_OTA, "fw_url": "ftp://x"}, "fw_url"), ({**SPEC_OTA, "fw_sha256": "AB"}, "fw_sha256"),
    ({**SPEC_OTA, "fw_size_bytes": 0}, "fw_size_bytes"), ({"fw_version": "2.2.0", "url": 5}, "url"),
    ({"fw_version": "2.2.0", "fw_url": "https://x/y"}, "fw_sha256"), ({**SPEC_OTA, "fw_version": "2"}, "fw_version"),
])
def test_start_ota_errors_name_the_key(params, named):
    with pytest.raises(ValueError, match=f"^{named} "):
        parse_request(params)


# -- settings ------------------------------------------------------------------------------------------------


def test_profile_brokers_and_keepalive_settings():
    s = make_settings()
    assert (s.profile, s.brokers, s.keepalive) == ("iothub", (A,), 30)
    s = make_settings("--mqtt-host", "mq", "--mqtt-port", "2000", SIM_PROFILE="spec")
    assert (s.profile, s.brokers, s.keepalive) == ("spec", (("mq", 2000),), 15)
    s = make_settings("--profile", "spec", "--keepalive", "40", SIM_BROKERS="a:1, b , [::1]:3", MQTT_PORT="9")
    assert (s.brokers, s.keepalive) == ((("a", 1), ("b", 9), ("::1", 3)), 40)
    assert make_settings("--brokers", "x:5", SIM_BROKERS="y:6", SIM_KEEPALIVE="7").brokers == (("x", 5),)
    assert make_settings(SIM_KEEPALIVE="7").keepalive == 7


@pytest.mark.parametrize("flags", [("--brokers", "a:1,b:2,c:3,d:4,e:5,f:6"), ("--brokers", "a:x"),
                                   ("--brokers", "a:1,a:1"), ("--brokers", "a:0")])
def test_bad_broker_lists_are_refused(flags):
    with pytest.raises(SettingsError):
        make_settings(*flags)


def test_unknown_profile_is_refused():
    with pytest.raises(SystemExit):
        make_settings("--profile", "toaster")


def test_whole_second_stamps():
    assert iso_seconds(1770890410.987) == "2026-02-12T10:00:10Z"
    assert SPEC.sample_stamp(1.0)(1770890410.987) == "2026-02-12T10:00:10Z"
    assert SPEC.sample_stamp(0.5)(1770890410.5) == "2026-02-12T10:00:10.500Z"  # distinct sub-second samples
