"""Pure domain: matching, for_seconds, hysteresis, re-notify, cooldown, lifecycle, idempotency, built-ins."""

from __future__ import annotations

import pytest

from rule_engine.decode import decode, decode_batch
from rule_engine.evaluator import ExpiredCommand
from rule_engine.model import Progress, Rule, RuleIndex, render
from tests.rule_engine.helpers import T0, changes_of, engine, gap, message, reading, rule, run


@pytest.mark.parametrize(("case", "matches", "cleared"), [
    (("gt", 50, 0, 51), True, False), (("gt", 50, 0, 50), False, True), (("gt", 50, 5, 47), False, False),
    (("gt", 50, 5, 45), False, True), (("gte", 50, 0, 50), True, False), (("gte", 50, 2, 48.5), False, False),
    (("gte", 50, 2, 47.9), False, True), (("lt", 10, 0, 9), True, False), (("lt", 10, 1, 10.5), False, False),
    (("lt", 10, 1, 11), False, True), (("lte", 10, 0, 10), True, False), (("lte", 10, 0, 10.1), False, True),
    (("eq", 1, 0, 1), True, False), (("eq", 1, 0, 0), False, True), (("eq", 1, 0.5, 1.4), False, False),
    (("neq", 1, 0, 0), True, False), (("neq", 1, 0, 1), False, True), (("neq", 1, 0.5, 2), True, False),
])
def test_operators_and_hysteresis(case, matches, cleared):
    op, threshold, hysteresis, value = case
    r = rule(operator=op, threshold=float(threshold), clear_hysteresis=hysteresis)
    assert r.matches(value) is matches
    assert r.cleared(value) is cleared


# (seconds after T0, value) -> expected published changes of that reading
@pytest.mark.parametrize(("params", "script"), [
    pytest.param({}, [(0, 60, ["opened"]), (1, 61, []), (2, 40, ["resolved"]), (3, 70, ["opened"])], id="plain"),
    pytest.param({"for_seconds": 10}, [(0, 60, []), (5, 61, []), (6, 40, []), (7, 60, []), (16, 60, []),
                                       (17, 60, ["opened"]), (18, 60, [])], id="for_seconds-resets-on-clear"),
    pytest.param({"clear_hysteresis": 5}, [(0, 60, ["opened"]), (1, 48, []), (2, 46, []), (3, 52, []),
                                           (4, 45, ["resolved"])], id="hysteresis"),
    pytest.param({"renotify_seconds": 60}, [(0, 60, ["opened"]), (30, 60, []), (61, 60, ["renotify"]),
                                            (100, 60, []), (121, 60, ["renotify"])], id="renotify"),
    pytest.param({"cooldown_seconds": 100}, [(0, 60, ["opened"]), (10, 40, ["resolved"]), (50, 60, []),
                                             (109, 60, []), (111, 60, ["opened"])], id="cooldown"),
    pytest.param({"for_seconds": 5, "cooldown_seconds": 10}, [(0, 60, []), (5, 60, ["opened"]), (6, 1, ["resolved"]),
                                                              (7, 60, []), (15, 60, []), (16, 60, ["opened"])],
                 id="for_seconds-counts-through-cooldown"),
])
def test_threshold_lifecycle(params, script):
    ev = engine(rule(**params))
    for seq, (dt, value, expected) in enumerate(script):
        ch = run(ev, [reading("d1", seq, T0 + dt, value)])
        assert changes_of(ch) == expected, f"reading {seq} at +{dt}s value {value}"


def test_for_seconds_event_starts_at_first_breach_and_counts_once():
    ev = engine(rule(for_seconds=10))
    run(ev, [reading("d1", i, T0 + i * 5, 60) for i in range(3)])
    event = ev.states[("r1", "d1")].event
    assert (event.first_ts, event.last_ts, event.count) == (T0, T0 + 10, 1)


def test_storm_of_breaches_opens_one_event_with_the_count():
    ev = engine(rule())
    ch = run(ev, [reading("d1", i, T0 + i, 60 + i % 7) for i in range(10_000)])
    assert changes_of(ch) == ["opened"]
    event = ev.states[("r1", "d1")].event
    assert (event.count, event.last_value, len(ch.inserted), ch.evaluations) == (10_000, 60 + 9999 % 7, 1, 10_000)


def test_redelivered_messages_are_not_counted_twice():
    ev = engine(rule())
    batch = [reading("d1", i, T0 + i, 60) for i in range(5)]
    run(ev, batch)
    ch = run(ev, [*batch[2:], reading("d1", 5, T0 + 5, 60)])
    assert (ch.duplicates, ev.states[("r1", "d1")].event.count) == (3, 6)


@pytest.mark.parametrize(("seen", "incoming", "accepted"), [
    ([(1, 5)], (1, 5), False), ([(1, 5)], (1, 4), True), ([(1, 5), (1, 4)], (1, 4), False),
    ([(1, 100)], (1, 30), False), ([(2, 1)], (1, 9), False), ([(1, 9)], (2, 0), True), ([], (0, 0), True),
    ([(1, 5)], (1, -1), True), ([(1, 1), (1, 70)], (1, 6), True),
])
def test_progress_window(seen, incoming, accepted):
    p = Progress("t")
    for epoch, seq in seen:
        assert p.accept(epoch, seq)
    assert p.accept(*incoming) is accepted


def test_scopes_pick_device_type_and_all_rules_and_builtin_overrides():
    rules = [rule(id="dev", scope="device", device_id="d1"), rule(id="typ", scope="device_type", device_type="t1"),
             rule(id="all"), rule(id="other", scope="device", device_id="d2"), rule(id="off", enabled=False),
             rule(id="volt", metric="voltage"),
             Rule("g-all", "gap", kind="seq_gap"), Rule("g-t1", "gap t1", kind="seq_gap", scope="device_type",
                                                        device_type="t1")]
    index = RuleIndex(rules)
    assert sorted(r.id for r in index.for_metric("temperature", "d1", "t1")) == ["all", "dev", "typ"]
    assert [r.id for r in index.for_metric("temperature", "d9", "t9")] == ["all"]
    assert index.for_metric("humidity", "d1", "t1") == []
    assert index.builtin("seq_gap", "d1", "t1").id == "g-t1"
    assert index.builtin("seq_gap", "d1", "t2").id == "g-all"
    assert index.builtin("offline", "d1", "t1") is None


def test_escalation_when_the_rule_severity_rises_while_open():
    ev = engine(rule(severity="warning"))
    run(ev, [reading("d1", 0, T0, 60)])
    ev.index = RuleIndex([rule(severity="critical")])
    ch = run(ev, [reading("d1", 1, T0 + 1, 60)])
    assert changes_of(ch) == ["escalated"]
    assert ch.outbox[0].routing_key == "critical.threshold.r1"
    assert ch.outbox[0].payload["event"]["severity"] == "critical"


@pytest.mark.parametrize(("status", "next_changes", "count"), [
    ("acknowledged", [], 2), ("resolved", ["opened"], 1), (None, ["opened"], 1)])
def test_changes_made_by_the_api_are_respected(status, next_changes, count):
    ev = engine(rule(renotify_seconds=1))
    run(ev, [reading("d1", 0, T0, 60)])
    open_states = ev.open_events(["d1"])
    event_id = open_states[("r1", "d1")].event.id
    ch = ev.begin(T0, open_states, {event_id: status} if status else {})
    ev.process(ch, reading("d1", 1, T0 + 5, 60))
    ev.commit(ch)
    assert changes_of(ch) == next_changes  # acknowledged: counted but never re-notified
    assert ev.states[("r1", "d1")].event.count == count


def test_payload_matches_the_documented_wire_format():
    ev = engine(rule(message_template="{metric} on {device_id} is {value} {unit} (> {threshold}) {nope}"))
    ch = run(ev, [reading("d1", 0, T0, 61.5)])
    payload = ch.outbox[0].payload
    assert set(payload) == {"change_id", "change", "occurred_at", "event"}
    assert payload["change_id"] == ch.outbox[0].message_id
    assert set(payload["event"]) == {"id", "rule_id", "rule_name", "rule_kind", "device_id", "device_type",
                                     "severity", "message", "status", "first_ts", "last_ts", "count",
                                     "trigger_values", "last_value", "resolved_by", "resolved_at"}
    assert payload["event"]["message"] == "temperature on d1 is 61.5 Cel (> 50) {nope}"
    assert ch.outbox[0].routing_key == "warning.threshold.r1"


def test_render_survives_a_broken_template():
    assert render("{value:d} {", value=1.5) == "{value:d} {"


def test_gap_notices_open_one_event_and_duplicates_are_ignored():
    ev = engine(Rule("g", "Sequence gap", kind="seq_gap", message_template="{device_id} lost {value} message(s)"))
    ch = run(ev, [gap("d1", 10, 3, T0), gap("d1", 10, 3, T0), gap("d1", 20, 2, T0 + 1)])
    assert changes_of(ch) == ["opened"]
    event = ev.states[("g", "d1")].event
    assert (event.count, event.last_value, event.message, ch.duplicates) == (2, 2.0, "d1 lost 3 message(s)", 1)


def test_ota_failed_opens_and_success_resolves():
    ev = engine(Rule("o", "OTA failed", kind="ota_failed", message_template="OTA on {device_id} failed: {detail}"))
    failed = {"cmd_id": "c1", "ota_state": "failed", "progress_pct": 10, "fw_version_target": "2", "detail": "crc"}
    ch = run(ev, [message("d1", 0, T0, "ota_status", failed),
                  message("d1", 1, T0 + 1, "ota_status", failed | {"ota_state": "downloading"})])
    assert changes_of(ch) == ["opened"]
    assert ch.outbox[0].payload["event"]["message"] == "OTA on d1 failed: crc"
    ch = run(ev, [message("d1", 2, T0 + 2, "ota_status", failed | {"ota_state": "success"})])
    assert changes_of(ch) == ["resolved"]


def test_offline_by_silence_by_status_and_back_online():
    offline = Rule("off", "Device offline", kind="offline", params={"factor": 2}, renotify_seconds=100)
    ev = engine(offline, intervals={"t1": (10, 30)})
    run(ev, [reading("d1", 0, T0, 1), reading("d2", 0, T0, 1)])
    assert ev.offline_candidates(T0 + 59) == []
    assert sorted(ev.offline_candidates(T0 + 60)) == ["d1", "d2"]
    ch = ev.begin(T0 + 60)
    ev.sweep_offline(ch, ["d1"])
    ev.commit(ch)
    assert changes_of(ch) == ["opened"]
    assert ch.outbox[0].payload["event"]["trigger_values"]["limit_s"] == 60
    ch = ev.begin(T0 + 61)
    ev.sweep_offline(ch, ["d1"])  # still silent: no second event, re-notify not due yet
    assert changes_of(ch) == []
    ch = ev.begin(T0 + 161)
    ev.sweep_offline(ch, ["d1"])
    assert changes_of(ch) == ["renotify"]
    assert changes_of(run(ev, [message("d2", -1, T0 + 5, "status", {"status": "offline"})], T0 + 5)) == ["opened"]
    assert changes_of(run(ev, [reading("d1", 1, T0 + 200, 1), reading("d2", 1, T0 + 200, 1)])) == ["resolved"] * 2


def test_command_timeouts_open_an_event_per_device():
    ev = engine(Rule("c", "Command not acknowledged", kind="command_timeout",
                     message_template="{device_id} did not acknowledge {cmd}"))
    ch = ev.begin(T0)
    ev.command_timeouts(ch, [ExpiredCommand("k1", "d1", "t1", "reboot", T0 - 1),
                             ExpiredCommand("k2", "d1", "t1", "reboot", T0 - 1)])
    assert changes_of(ch) == ["opened"]
    assert ch.outbox[0].payload["event"]["message"] == "d1 did not acknowledge reboot"
    assert ch.outbox[0].payload["event"]["count"] == 1  # the payload is a snapshot at the change


def test_failed_batch_leaves_the_state_untouched():
    ev = engine(rule())
    ch = ev.begin(T0)
    ev.process(ch, reading("d1", 0, T0, 60))  # never committed: the store failed
    assert ev.states == {} and ev.progress == {}
    assert changes_of(run(ev, [reading("d1", 0, T0, 60)])) == ["opened"]


def test_deleted_rules_lose_their_state():
    ev = engine(rule(), rule(id="r2"))
    run(ev, [reading("d1", 0, T0, 60)])
    ev.drop_rules({"r2"})
    assert list(ev.states) == [("r2", "d1")] and ev.open_events(["d1"]).keys() == {("r2", "d1")}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"kind": "gap"}', b'{"msg_id": 1}',
                                  b'{"msg_id":"m","device_id":"d","device_type":"t","msg_type":"telemetry","ts":'
                                  b'"2026-01-01T00:00:00+00:00","seq":1,"epoch":1,"received_at":'
                                  b'"2026-01-01T00:00:00+00:00","source":"mqtt","body":{"measurements":[{"val":"x"}]}}'])
def test_undecodable_bodies_are_rejected(body):
    inputs, failures = decode_batch([body])
    assert inputs == [] and failures[0].reason == "undecodable"


def test_decode_batch_sorts_by_device_epoch_seq():
    from tests.rule_engine.helpers import ingest
    one = [("x", 1, "")]
    bodies = [ingest("b", "t", 2, T0, one).encode(), ingest("a", "t", 9, T0, one).encode(),
              ingest("b", "t", 1, T0, one, epoch=2).encode(), ingest("b", "t", 1, T0, one).encode()]
    inputs, failures = decode_batch(bodies)
    assert failures == {}
    assert [(i.device_id, i.epoch, i.seq) for i in inputs] == [("a", 1, 9), ("b", 1, 1), ("b", 1, 2), ("b", 2, 1)]
    assert decode(bodies[0]).ts == T0


def test_progress_is_stored_only_when_a_redelivery_could_change_something():
    ev = engine(rule())
    ev.persist_seen_s = 30

    def saved(inputs):
        ch = ev.begin(T0)
        for inp in inputs:
            ev.process(ch, inp)
        ev.finish(ch)
        ev.commit(ch)
        return sorted(ch.save_progress)

    assert saved([reading("a", 0, T0, 1), reading("b", 0, T0, 1)]) == ["a", "b"]  # new devices
    assert saved([reading("a", 1, T0 + 1, 1), reading("b", 1, T0 + 1, 60)]) == ["b"]  # b opened an event
    assert saved([reading("a", 2, T0 + 31, 1)]) == ["a"]  # last-seen drifted past persist_seen_s
    assert saved([reading("a", 3, T0 + 32, 1), reading("b", 2, T0 + 32, 40)]) == ["b"]  # b resolved


def test_silence_counts_from_the_engine_start_not_from_before_a_restart():
    ev = engine(Rule("off", "Device offline", kind="offline", params={"factor": 1}), intervals={"t1": (10, 30)})
    run(ev, [reading("d1", 0, T0, 1)])
    ev.started_at = T0 + 1000  # restarted long after d1 was last heard
    assert ev.offline_candidates(T0 + 1029) == []
    assert ev.offline_candidates(T0 + 1030) == ["d1"]
