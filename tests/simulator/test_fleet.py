"""The fleet engine over an in-memory sink: sequence, hello first, faults and commands."""

from __future__ import annotations

import itertools
import random
import uuid

import pytest

from iothub.contract import InvalidMessage, Reason, parse
from simulator.device import SEQ_MODULUS, SeqCounter
from simulator.fleet import Fleet
from tests.simulator.conftest import ListSink, command, fleet_of, make_settings, run_ticks, sequenced, signed

SHA = "ab" * 32
OTA = {"fw_version": "2.0.0", "url": "https://fw.example/2.0.0.bin", "sha256": SHA, "size": 1024}


def test_seq_counter_wraps_at_2_32():
    c = SeqCounter(SEQ_MODULUS - 2)
    assert [c.take() for _ in range(4)] == [SEQ_MODULUS - 2, SEQ_MODULUS - 1, 0, 1]
    c.skip(SEQ_MODULUS - 1)
    assert c.take() == 1


def test_hello_first_then_seq_plus_one_across_all_types():
    fleet, sink = fleet_of("--devices", "3", "--send-interval", "1", "--hello-interval", "2.5", "--ota-step", "0.2")
    t = run_ticks(fleet, 3)
    dev = fleet.devices[0].device_id
    command(fleet, dev, "request_status", {}, t)
    command(fleet, dev, "start_ota", OTA, t)
    run_ticks(fleet, 4, start=t)
    for d in fleet.devices:
        envs = sequenced(sink, d.device_id)
        assert envs[0].msg_type == "hello" and envs[0].seq == 0
        epochs = [[]]
        for e in envs:
            if e.seq == 0 and epochs[-1]:
                epochs.append([])
            epochs[-1].append(e.seq)
        for seqs in epochs:
            assert seqs == list(range(len(seqs)))
    kinds = {e.msg_type for e in sequenced(sink, dev)}
    assert kinds == {"hello", "telemetry", "command_ack", "ota_status"}


def test_seq_wraps_around_in_messages():
    fleet, sink = fleet_of("--devices", "1", "--send-interval", "1")
    fleet.devices[0].seq.next = SEQ_MODULUS - 2  # before power-on: the hello takes the first number
    run_ticks(fleet, 3.05)
    assert [e.seq for e in sequenced(sink, fleet.devices[0].device_id)][:4] == [SEQ_MODULUS - 2, SEQ_MODULUS - 1,
                                                                                  0, 1]


def test_samples_per_datagram_and_sampling_interval():
    fleet, sink = fleet_of("--devices", "1", "--type-mix", "power_meter_ac", "--send-interval", "2",
                           "--sampling-interval", "0.5")
    run_ticks(fleet, 2.1)
    env = next(e for e in sequenced(sink, fleet.devices[0].device_id) if e.msg_type == "telemetry")
    items = env.body["measurements"]
    assert len(items) == 4 * 6
    stamps = sorted({i["ts"] for i in items})
    assert len(stamps) == 4 and stamps[-1] == env.body["ts"]


def test_duplicates_resend_an_earlier_message():
    fleet, sink = fleet_of("--devices", "2", "--send-interval", "0.5", "--duplicate-rate", "0.5")
    run_ticks(fleet, 20)
    payloads = sink.bodies("/telemetry")
    repeats = len(payloads) - len(set(payloads))
    assert repeats == fleet.faults["duplicate"] > 5


def test_gaps_skip_exactly_the_numbers_reported():
    fleet, sink = fleet_of("--devices", "1", "--send-interval", "0.5", "--gap-rate", "0.3", "--max-gap", "4")
    run_ticks(fleet, 30)
    seqs = [e.seq for e in sequenced(sink, fleet.devices[0].device_id)]
    skipped = sum(b - a - 1 for a, b in itertools.pairwise(seqs))
    assert skipped == fleet.faults["gap_seqs"] > 0
    assert all(b > a for a, b in itertools.pairwise(seqs))


def test_malformed_messages_are_invalid_and_take_no_seq():
    fleet, sink = fleet_of("--devices", "1", "--send-interval", "0.2", "--malformed-rate", "0.5")
    run_ticks(fleet, 20)
    reasons = []
    for payload in sink.bodies("/telemetry"):
        try:
            parse(payload)
        except InvalidMessage as exc:
            reasons.append(exc.reason)
    assert len(reasons) == fleet.published["malformed"] > 10
    assert set(reasons) == {Reason.MALFORMED_JSON, Reason.NON_FINITE, Reason.WRONG_TYPE, Reason.TOO_MANY_MEASUREMENTS}
    seqs = [e.seq for e in sequenced(sink, fleet.devices[0].device_id)]
    assert seqs == list(range(len(seqs)))
    assert sum(v for k, v in fleet.faults.items() if k.startswith("malformed_")) == fleet.published["malformed"]


def test_out_of_range_readings_are_valid_envelopes_beyond_the_limits():
    fleet, sink = fleet_of("--devices", "1", "--type-mix", "power_meter_dc", "--send-interval", "0.5",
                           "--out-of-range-rate", "1")
    run_ticks(fleet, 2)
    limits = {"voltage_dc": (0, 1500), "current_dc": (-1000, 1000), "temperature": (-40, 125)}
    datagrams = [e for e in sequenced(sink, fleet.devices[0].device_id) if e.msg_type == "telemetry"]
    assert datagrams
    for env in datagrams:
        outside = [m for m in env.body["measurements"] if not limits[m["type"]][0] <= m["val"] <= limits[m["type"]][1]]
        assert len(outside) == 1


def test_reboot_fault_restarts_the_sequence_with_a_hello():
    fleet, sink = fleet_of("--devices", "1", "--send-interval", "0.5", "--reboot-rate", "0.2")
    run_ticks(fleet, 30)
    envs = sequenced(sink, fleet.devices[0].device_id)
    restarts = [e for e in envs[1:] if e.seq == 0]
    assert len(restarts) == fleet.faults["reboot"] > 0
    assert all(e.msg_type == "hello" and e.body["uptime_s"] < 5 for e in restarts)
    assert fleet.devices[0].epoch == fleet.faults["reboot"]


def test_commands_answered_per_protocol():
    fleet, sink = fleet_of("--devices", "1", "--send-interval", "1")
    dev = fleet.devices[0].device_id
    run_ticks(fleet, 0.5)
    unknown = str(uuid.uuid4())
    fleet.handle_command(dev, signed(dev, unknown, "self_destruct", {}), 1)
    bad_cfg = command(fleet, dev, "update_config", {"send_interval_s": -1}, 1)
    bad_ota = command(fleet, dev, "start_ota", {"fw_version": "x"}, 1)
    good_cfg = command(fleet, dev, "update_config", {"send_interval_s": 3, "color": "red"}, 1)
    nested = command(fleet, dev, "update_config", {"config": {"hello_interval_s": 20}, "version": 4}, 1)
    fleet.handle_command(dev, b"not json", 1)
    acks = {e.body["cmd_id"]: e.body for e in sequenced(sink, dev) if e.msg_type == "command_ack"}
    assert acks[unknown]["result"] == "unsupported"
    assert acks[bad_cfg]["result"] == "rejected" and "send_interval_s" in acks[bad_cfg]["detail"]
    assert acks[bad_ota]["result"] == "rejected" and "fw_version" in acks[bad_ota]["detail"]
    assert acks[good_cfg]["result"] == "accepted" and acks[good_cfg]["detail"] == "ignored: color"
    assert acks[nested]["result"] == "accepted" and acks[nested]["detail"] == ""
    assert (fleet.devices[0].config.send_interval_s, fleet.devices[0].config.hello_interval_s) == (3.0, 20.0)
    assert fleet.errors["unreadable_command"] == 1


def test_redelivered_command_is_acked_again_but_not_repeated():
    fleet, sink = fleet_of("--devices", "1")
    dev = fleet.devices[0]
    run_ticks(fleet, 0.2)
    raw = signed(dev.device_id, str(uuid.uuid4()), "reboot", {})
    fleet.handle_command(dev.device_id, raw, 1)
    fleet.handle_command(dev.device_id, raw, 1)
    assert dev.epoch == 1
    assert len([p for p in sink.bodies("/command/ack")]) == 2


@pytest.mark.parametrize(("failure_rate", "final"), [("0", "success"), ("1", "failed")])
def test_ota_walks_its_states(failure_rate, final):
    fleet, sink = fleet_of("--devices", "1", "--ota-step", "0.1", "--ota-failure-rate", failure_rate)
    dev = fleet.devices[0]
    run_ticks(fleet, 0.2)
    cmd_id = command(fleet, dev.device_id, "start_ota", OTA, 0.2)
    run_ticks(fleet, 2, start=0.2, step=0.05)
    steps = [e.body for e in sequenced(sink, dev.device_id) if e.msg_type == "ota_status"]
    assert {s["cmd_id"] for s in steps} == {cmd_id}
    states = [s["ota_state"] for s in steps]
    assert states[-1] == final and states[0] == "downloading"
    progress = [s["progress_pct"] for s in steps]
    assert progress == sorted(progress)
    hellos = [e.body for e in sequenced(sink, dev.device_id) if e.msg_type == "hello"]
    assert (hellos[-1]["fw_version"], dev.fw_version) == (("2.0.0", "2.0.0") if final == "success"
                                                          else ("1.0.0", "1.0.0"))
    if final == "success":
        assert states == ["downloading"] * 5 + ["verifying", "applying", "success"]
        assert hellos[-1]["seq"] == 0 and dev.epoch == 1
    else:
        assert steps[-1]["detail"]


def test_rate_mode_sets_the_send_interval():
    s = make_settings("--devices", "500", "--rate", "1000")
    assert s.send_interval_s == 0.5
    fleet = Fleet(s, ListSink(), rng=random.Random(1))
    assert all(d.config.send_interval_s == 0.5 for d in fleet.devices)
