"""Liveness per spec REQ-ONLINE-001: any message is a sign of life, and silence is judged by each device's own
applied configuration."""

from __future__ import annotations

import orjson

from rule_engine.decode import decode
from rule_engine.model import Input, Rule
from tests.rule_engine.helpers import T0, changes_of, engine, iso, reading, run

OFFLINE = Rule("off", "Device offline", kind="offline", params={"factor": 2})


def seen(device: str, at: float, why: str = "duplicate") -> Input:
    """A seen notice as the rule engine decodes it from the collector's JSON."""
    return decode(orjson.dumps({"kind": "seen", "device_id": device, "device_type": "t1", "why": why,
                                "received_at": iso(at)}))


def test_seen_notices_decode_and_keep_a_device_that_only_repeats_itself_online():
    ev = engine(OFFLINE, intervals={"t1": (10, 30)})
    run(ev, [reading("d1", 0, T0, 1)])
    for step in range(1, 20):  # for 190 s the device only sends duplicates and messages that are dead-lettered
        run(ev, [seen("d1", T0 + 10 * step, "rejected" if step % 2 else "duplicate")], T0 + 10 * step)
        assert ev.offline_candidates(T0 + 10 * step + 9) == []
    assert ev.offline_candidates(T0 + 190 + 60) == ["d1"]  # then silence: offline after 2 x max(10, 30)


def test_a_seen_notice_resolves_an_open_offline_event():
    ev = engine(OFFLINE, intervals={"t1": (10, 30)})
    run(ev, [reading("d1", 0, T0, 1)])
    ch = ev.begin(T0 + 60)
    ev.sweep_offline(ch, ["d1"])
    ev.commit(ch)
    assert changes_of(ch) == ["opened"]
    assert changes_of(run(ev, [seen("d1", T0 + 70)], T0 + 70)) == ["resolved"]


def test_the_limit_follows_each_devices_applied_intervals_over_its_types():
    ev = engine(OFFLINE, intervals={"t1": (10, 30)})
    run(ev, [reading("slow", 0, T0, 1), reading("fast", 0, T0, 1), reading("typed", 0, T0, 1)])
    ev.index.device_intervals.update({"slow": (600.0, None, None), "fast": (1.0, 5.0, None)})
    assert ev.index.offline_limit(OFFLINE, "t1", "slow") == 1200  # 2 x max(600, type's 30)
    assert ev.index.offline_limit(OFFLINE, "t1", "fast") == 10
    assert ev.index.offline_limit(OFFLINE, "t1", "typed") == 60
    assert sorted(ev.offline_candidates(T0 + 11)) == ["fast"]
    assert sorted(ev.offline_candidates(T0 + 61)) == ["fast", "typed"]


REDUNDANCY = Rule("red", "Broker redundancy lost", kind="redundancy",
                  message_template="{device_id} is connected to {value} of its {expected} broker(s)")


def _hello(device: str, seq: int, at: float, links: int) -> Input:
    body = {"fw_version": "2.1.0", "uptime_s": 100, "broker_connections": links, "buf_usage_pct": 0}
    return Input("msg", device, "t1", 1, seq, at, at, "hello", f"{device}/{seq}", body)


def test_a_meter_below_its_configured_broker_count_raises_an_alert_until_it_reconnects():
    ev = engine(REDUNDANCY)
    ev.index.device_intervals["m1"] = (10.0, 60.0, 3)  # its applied configuration names three brokers
    assert changes_of(run(ev, [_hello("m1", 1, T0, 3)])) == []
    ch = run(ev, [_hello("m1", 2, T0 + 60, 2)])
    assert changes_of(ch) == ["opened"]
    assert ch.outbox[0].payload["event"]["message"] == "m1 is connected to 2 of its 3 broker(s)"
    assert changes_of(run(ev, [_hello("m1", 3, T0 + 120, 3)])) == ["resolved"]


def test_redundancy_is_judged_only_where_an_expectation_exists():
    ev = engine(REDUNDANCY)
    assert changes_of(run(ev, [_hello("m2", 1, T0, 1)])) == []  # no broker list, no minimum: nothing to say
    ev.index = type(ev.index)([Rule("red", "r", kind="redundancy", params={"min_connections": 2})])
    assert changes_of(run(ev, [_hello("m2", 2, T0 + 1, 1)])) == ["opened"]
