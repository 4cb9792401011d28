"""The fleet in the spec profile over a ListSink: QoS, hello suppression, readings, repeats across brokers."""

from __future__ import annotations

import uuid
from collections import defaultdict

import orjson

from iothub.contract.topics import parse_device_topic
from tests.simulator.conftest import (
    SPEC_OTA,
    WHOLE_SECONDS,
    A,
    B,
    C,
    brokers,
    command,
    fleet_of,
    run_ticks,
    sequenced,
    signed,
)


def qos_by_type(sink) -> dict[str, set[int]]:
    out = defaultdict(set)
    for (_, topic, _, _), qos in zip(sink.sent, sink.qos, strict=True):
        out[parse_device_topic(topic)[1]].add(qos)
    return dict(out)


def test_spec_qos_per_message_type():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "1", "--send-interval", "2", "--hello-interval", "1",
                           "--ota-step", "0.1")
    t = run_ticks(fleet, 3)
    command(fleet, fleet.devices[0].device_id, "start_ota", SPEC_OTA, t)
    run_ticks(fleet, 2, start=t)
    assert qos_by_type(sink) == {"telemetry": {2}, "hello": {2}, "command_ack": {2}, "ota_status": {1},
                                 "status": {1}}
    fleet, sink = fleet_of("--devices", "1", "--send-interval", "2", "--hello-interval", "1")
    run_ticks(fleet, 3)
    assert set().union(*qos_by_type(sink).values()) == {1}


def test_spec_device_at_defaults_never_says_hello():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "2")
    t = run_ticks(fleet, 200, step=0.5)
    for d in fleet.devices:
        envs = sequenced(sink, d.device_id)
        assert len(envs) >= 19 and {e.msg_type for e in envs} == {"telemetry"}
        assert [e.seq for e in envs] == list(range(len(envs)))
    dev = fleet.devices[0]
    command(fleet, dev.device_id, "reboot", {}, t)
    run_ticks(fleet, 20, start=t, step=0.5)
    after = sequenced(sink, dev.device_id)[len(envs) + 1:]  # past the reboot's ack
    assert dev.epoch == 1 and after[0].seq == 0 and {e.msg_type for e in after} == {"telemetry"}


def test_spec_hellos_only_while_send_interval_is_longer():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "1", "--send-interval", "20", "--hello-interval", "5")
    dev = fleet.devices[0].device_id
    t = run_ticks(fleet, 60, step=0.5)
    hellos = [e for e in sequenced(sink, dev) if e.msg_type == "hello"]
    assert hellos[0].seq == 0 and 12 <= len(hellos) <= 13
    command(fleet, dev, "update_config", {"send_interval_s": 5}, t)  # now not longer: hellos stop
    t = run_ticks(fleet, 60, start=t, step=0.5)
    assert len([e for e in sequenced(sink, dev) if e.msg_type == "hello"]) == len(hellos)
    command(fleet, dev, "update_config", {"hello_interval_s": 5, "send_interval_s": 30}, t)
    run_ticks(fleet, 30, start=t, step=0.5)
    assert len([e for e in sequenced(sink, dev) if e.msg_type == "hello"]) >= len(hellos) + 5


def test_spec_readings_timestamps_and_status_bodies():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "1", "--type-mix", "power_meter_ac")
    run_ticks(fleet, 11)
    telemetry = orjson.loads(sink.bodies("/telemetry")[0])
    assert len(telemetry["measurements"]) == 10 * 6 and WHOLE_SECONDS.match(telemetry["ts"])
    for m in telemetry["measurements"]:
        assert WHOLE_SECONDS.match(m["ts"])
        assert ("unit" in m) == (m["type"] != "pf"), m
    status = orjson.loads(sink.bodies("/status")[0])
    assert status.keys() == {"v", "device_id", "status", "ts"} and WHOLE_SECONDS.match(status["ts"])
    fleet, sink = fleet_of("--devices", "1", "--type-mix", "power_meter_ac")
    run_ticks(fleet, 11)
    pf = [m for m in orjson.loads(sink.bodies("/telemetry")[0])["measurements"] if m["type"] == "pf"]
    assert pf and all(m["unit"] == "" for m in pf)  # the iothub profile is unchanged


def test_spec_dc_datagram_at_the_defaults_is_ten_v_i_pairs():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "1", "--type-mix", "power_meter_dc")
    run_ticks(fleet, 11)
    items = orjson.loads(sink.bodies("/telemetry")[0])["measurements"]
    assert [m["type"] for m in items] == ["voltage_dc", "current_dc"] * 10
    assert len({m["ts"] for m in items}) == 10 and all(m["unit"] in ("V", "A") for m in items)


def test_spec_reboot_fault_restarts_with_telemetry():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "1", "--send-interval", "1", "--reboot-rate", "0.2")
    run_ticks(fleet, 60)
    envs = sequenced(sink, fleet.devices[0].device_id)
    restarts = [e for e in envs[1:] if e.seq == 0]
    # A reboot rolled again on the first tick after it leaves an epoch that sent nothing: no hello to fill it.
    assert 0 < len(restarts) <= fleet.faults["reboot"] == fleet.devices[0].epoch
    assert {e.msg_type for e in envs} == {"telemetry"}


def test_request_status_and_ota_success_say_hello_even_when_suppressed():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "1", "--ota-step", "0.1")
    sink.connections = 2
    dev = fleet.devices[0]
    run_ticks(fleet, 0.5)
    command(fleet, dev.device_id, "request_status", {}, 0.5)
    hello = [e.body for e in sequenced(sink, dev.device_id) if e.msg_type == "hello"]
    assert len(hello) == 1 and hello[0]["broker_connections"] == 2
    command(fleet, dev.device_id, "start_ota", SPEC_OTA, 0.5)
    run_ticks(fleet, 2, start=0.5, step=0.05)
    last = [e for e in sequenced(sink, dev.device_id) if e.msg_type == "hello"][-1]
    assert (last.seq, last.body["fw_version"], dev.epoch) == (0, "2.2.0", 1)  # REQ-OTA-005


def test_a_command_runs_once_and_repeats_are_answered_once_per_broker():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "1", "--brokers", "127.0.0.1:1883,127.0.0.1:1884")
    dev = fleet.devices[0]
    run_ticks(fleet, 0.5)
    raw = signed(dev.device_id, str(uuid.uuid4()), "reboot", {})
    for broker in (A, B, A, A, B, B):  # the server's copy through each broker, and redeliveries of both
        fleet.handle_command(dev.device_id, raw, 1, broker)
    assert dev.epoch == 1
    assert len(sink.bodies("/command/ack")) == 3  # the answer, then once more for each broker
    fleet.handle_command(dev.device_id, signed(dev.device_id, str(uuid.uuid4()), "reboot", {}), 1, C)
    assert dev.epoch == 1 and len(sink.bodies("/command/ack")) == 3  # not one of its brokers: never heard


def test_update_config_brokers_moves_the_device_and_factory_reset_moves_it_back():
    fleet, sink = fleet_of("--profile", "spec", "--devices", "1")
    dev = fleet.devices[0]
    run_ticks(fleet, 0.5)
    cmd_id = command(fleet, dev.device_id, "update_config", {"brokers": brokers(1884, 1885), "tls_enabled": True}, 1)
    ack = orjson.loads(sink.bodies("/command/ack")[-1])
    assert (ack["cmd_id"], ack["result"]) == (cmd_id, "accepted")
    assert (sink.routes[0], dev.config.tls_enabled) == ((B, C), True)
    goodbye, hello_again = (orjson.loads(p) for p in sink.bodies("/status")[-2:])
    assert (goodbye["status"], hello_again["status"]) == ("offline", "online")
    fleet.handle_command(dev.device_id, signed(dev.device_id, str(uuid.uuid4()), "factory_reset", {}), 1, B)
    assert (sink.routes[0], dev.config) == ((A,), fleet.default_config)
