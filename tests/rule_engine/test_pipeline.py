"""The rule engine against real RabbitMQ and PostgreSQL, running in-process."""

from __future__ import annotations

import time
import uuid

import orjson

from iothub import topology
from tests.rule_engine.conftest import Tap, events_of, processed_seq, reload_rules
from tests.rule_engine.helpers import gap_notice, ingest, ingest_other
from tests.support.poll import wait_for


def _outbox(db, event_id: str) -> list[tuple]:
    with db.transaction() as cur:
        cur.execute("SELECT message_id::text, payload->>'change', published_at IS NOT NULL, routing_key FROM outbox "
                    "WHERE payload->'event'->>'id' = %s ORDER BY id", (event_id,))
        return cur.fetchall()


def test_storm_of_10000_breaches_opens_one_event_stored_and_published(rig, uid):
    engine, feeder, events_tap, rules, db = rig.engine, rig.feeder, rig.tap, rig.rules, rig.db
    device = f"storm-{uid}"
    rule_id = rules(name=f"hot {uid}", scope="device", device_id=device, metric="temperature", operator="gt",
                    threshold=50, severity="critical")
    reload_rules(engine, feeder)
    base = time.time() - 20_000
    for seq in range(10_000):
        feeder.send(ingest(device, "t1", seq, base + seq, [("temperature", 60 + seq % 5, "Cel")]), wait=False)
    feeder.flush(10_000)
    wait_for(lambda: processed_seq(engine, device) == 9999, timeout=60, what="10,000 readings evaluated")
    [event] = events_of(db, device, "threshold")
    assert (event["rule_id"], event["status"], event["count"], event["severity"]) == (rule_id, "open", 10_000,
                                                                                       "critical")
    [(change_id, change, _, key)] = wait_for(lambda: [r for r in _outbox(db, event["id"]) if r[2]],
                                             what="outbox row published")
    assert (change, key) == ("opened", f"critical.threshold.{rule_id}")
    published = wait_for(lambda: [(p, b) for _, p, b in events_tap.drain() if p.message_id == change_id],
                         what="event change on iot.events")
    _, body = published[0]
    payload = orjson.loads(body)
    assert payload["change_id"] == change_id and payload["event"]["id"] == event["id"]
    assert payload["event"]["rule_name"] == f"hot {uid}" and payload["event"]["count"] == 1


def test_for_seconds_renotify_and_hysteresis_clear_end_to_end(rig, uid):
    engine, feeder, events_tap, rules, db = rig.engine, rig.feeder, rig.tap, rig.rules, rig.db
    device = f"life-{uid}"
    rules(name=f"volt {uid}", scope="device_type", device_type=f"type-{uid}", metric="voltage_dc", operator="gte",
          threshold=1600, for_seconds=10, clear_hysteresis=50, renotify_seconds=30)
    reload_rules(engine, feeder)
    base = time.time() - 600
    script = [(0, 1650), (5, 1700), (10, 1610), (45, 1620), (50, 1580), (55, 1549)]
    for seq, (dt, value) in enumerate(script):
        feeder.send(ingest(device, f"type-{uid}", seq, base + dt, [("voltage_dc", value, "V")]))
    wait_for(lambda: processed_seq(engine, device) == len(script) - 1, what="script evaluated")
    [event] = events_of(db, device, "threshold")
    assert (event["status"], event["resolved_by"], event["count"]) == ("resolved", "system", 2)
    wait_for(lambda: len([e for e in events_tap.events() if e["event"]["id"] == event["id"]]) == 3,
             what="three changes")
    changes = [e["change"] for e in events_tap.events() if e["event"]["id"] == event["id"]]
    assert changes == ["opened", "renotify", "resolved"]


def test_rule_change_in_the_database_applies_after_the_notice(engine, feeder, rules, db, uid):
    device = f"edit-{uid}"
    rule_id = rules(name=f"edit {uid}", scope="device", device_id=device, metric="current_dc", operator="gt",
                    threshold=500)
    reload_rules(engine, feeder)
    now = time.time()
    feeder.send(ingest(device, "t1", 0, now, [("current_dc", 300, "A")]))
    wait_for(lambda: processed_seq(engine, device) == 0, what="first reading evaluated")
    assert events_of(db, device) == []
    with db.transaction() as cur:
        cur.execute("UPDATE rules SET threshold = 200, updated_at = now() WHERE id = %s", (rule_id,))
    reload_rules(engine, feeder)  # no restart; RULES_MAX_AGE_S is 600 here, so only the notice can do it
    feeder.send(ingest(device, "t1", 1, now + 1, [("current_dc", 300, "A")]))
    [event] = wait_for(lambda: events_of(db, device), what="event under the new threshold")
    assert event["rule_id"] == rule_id and event["last_value"] == 300


def test_acknowledge_and_manual_resolve_by_the_api_are_respected(engine, feeder, rules, db, uid):
    device = f"api-{uid}"
    rules(name=f"api {uid}", scope="device", device_id=device, metric="temperature", operator="gt", threshold=50,
          renotify_seconds=1)
    reload_rules(engine, feeder)
    now = time.time()
    feeder.send(ingest(device, "t1", 0, now, [("temperature", 60, "Cel")]))
    [event] = wait_for(lambda: events_of(db, device), what="event")
    with db.transaction() as cur:
        cur.execute("UPDATE events SET status = 'acknowledged', acknowledged_by = 'op' WHERE id = %s", (event["id"],))
    feeder.send(ingest(device, "t1", 1, now + 5, [("temperature", 61, "Cel")]))
    wait_for(lambda: processed_seq(engine, device) == 1, what="second reading")
    [event] = events_of(db, device)
    assert (event["status"], event["count"]) == ("acknowledged", 2)
    assert [c for _, c, _, _ in _outbox(db, event["id"])] == ["opened"]  # acknowledged: no re-notify
    with db.transaction() as cur:
        cur.execute("UPDATE events SET status = 'resolved', resolved_by = 'op', resolved_at = now() WHERE id = %s",
                    (event["id"],))
    feeder.send(ingest(device, "t1", 2, now + 6, [("temperature", 62, "Cel")]))
    wait_for(lambda: len(events_of(db, device)) == 2, what="a new event after the manual resolve")
    first, second = events_of(db, device)
    assert (first["resolved_by"], first["count"], second["status"], second["count"]) == ("op", 2, "open", 1)


def test_gap_notice_opens_a_sequence_gap_event(engine, feeder, db, uid):
    device = f"gap-{uid}"
    feeder.gap(gap_notice(device, "t1", 20, 3))
    feeder.gap(gap_notice(device, "t1", 20, 3))  # redelivered/duplicated notice
    feeder.gap(gap_notice(device, "t1", 40, 5))
    wait_for(lambda: [e for e in events_of(db, device, "seq_gap") if e["count"] == 2], what="gap event, 2 gaps")
    [event] = events_of(db, device, "seq_gap")
    assert event["message"] == f"{device} lost 3 message(s)" and event["last_value"] == 5


def test_ota_failed_opens_an_event(engine, feeder, db, uid):
    device = f"ota-{uid}"
    body = {"cmd_id": str(uuid.uuid4()), "ota_state": "failed", "progress_pct": 40, "fw_version_target": "2.0.0",
            "detail": "sha256 mismatch"}
    feeder.send(ingest_other(device, "t1", 0, "ota_status", body))
    [event] = wait_for(lambda: events_of(db, device, "ota_failed"), what="ota_failed event")
    assert event["message"] == f"OTA on {device} failed: sha256 mismatch" and event["severity"] == "critical"
    feeder.send(ingest_other(device, "t1", 1, "ota_status", body | {"ota_state": "success", "progress_pct": 100}))
    wait_for(lambda: events_of(db, device, "ota_failed")[0]["status"] == "resolved", what="resolved by success")


def test_unacknowledged_command_expires_and_opens_an_event(engine, db, uid):
    device = f"cmd-{uid}"
    cmd_id = str(uuid.uuid4())
    with db.transaction() as cur:
        cur.execute("INSERT INTO devices (device_id, name, device_type_id) SELECT %s, %s, id FROM device_types "
                    "WHERE name = 'power_meter_dc' RETURNING id", (device, device))
        pk = cur.fetchone()[0]
        cur.execute("INSERT INTO commands (id, device_id, cmd, status, sent_at, expires_at) VALUES "
                    "(%s, %s, 'reboot', 'sent', now() - interval '1 minute', now() - interval '1 second')",
                    (cmd_id, pk))
    [event] = wait_for(lambda: events_of(db, device, "command_timeout"), what="command_timeout event")
    assert event["message"] == f"{device} did not acknowledge reboot"
    assert event["trigger_values"]["cmd_id"] == cmd_id
    with db.transaction() as cur:
        cur.execute("SELECT status FROM commands WHERE id = %s", (cmd_id,))
        assert cur.fetchone()[0] == "expired"


def test_offline_by_silence_and_by_status_then_back_online(engine, feeder, rules, db, uid):
    silent, dropped = f"quiet-{uid}", f"lwt-{uid}"
    for device in (silent, dropped):  # factor 0.02 x max(10, 60) s = 1.2 s of silence
        rules(name=f"offline {device}", kind="offline", scope="device", device_id=device, severity="critical",
              message_template="{device_id} sent nothing for {value} s", params={"factor": 0.02})
    reload_rules(engine, feeder)
    feeder.send(ingest(silent, "t1", 0, time.time(), [("temperature", 20, "Cel")]))
    [event] = wait_for(lambda: events_of(db, silent, "offline"), timeout=10, what="offline after silence")
    assert event["trigger_values"]["reason"] == "silent" and event["trigger_values"]["limit_s"] == 1.2
    feeder.send(ingest(silent, "t1", 1, time.time(), [("temperature", 20, "Cel")]))
    wait_for(lambda: events_of(db, silent, "offline")[0]["status"] == "resolved", what="back online")
    feeder.send(ingest_other(dropped, "t1", -1, "status", {"status": "offline"}))
    [event] = wait_for(lambda: events_of(db, dropped, "offline"), timeout=5, what="offline from status")
    assert event["trigger_values"]["reason"] == "status offline"


def test_undecodable_message_is_dead_lettered_with_the_reason(engine, feeder, amqp_url, uid):
    tap = Tap(amqp_url, topology.DEAD_LETTER_EXCHANGE, "")
    try:
        key = topology.telemetry_key("telemetry", "t1", f"bad-{uid}", 0)
        feeder.raw(topology.TELEMETRY_EXCHANGE, key, b"{not json", message_id=f"bad-{uid}")
        found = wait_for(lambda: [p for _, p, _ in tap.drain() if p.message_id == f"bad-{uid}"
                                  and p.headers[topology.DL_SOURCE] == "rule-engine"],
                         what="dead letter from the rule engine")
        assert found[0].headers[topology.DL_REASON] == "undecodable"
    finally:
        tap.close()


def test_rule_deleted_or_disabled_under_open_events_never_blocks_the_stream(engine, feeder, rules, db, uid):
    deleted, toggled = f"del-{uid}", f"tog-{uid}"
    gone = rules(name=f"gone {uid}", scope="device", device_id=deleted, metric="temperature", operator="gt",
                 threshold=50)
    flip = rules(name=f"flip {uid}", scope="device", device_id=toggled, metric="temperature", operator="gt",
                 threshold=50)
    reload_rules(engine, feeder)
    now = time.time()
    for device in (deleted, toggled):
        feeder.send(ingest(device, "t1", 0, now, [("temperature", 60, "Cel")]))
    wait_for(lambda: events_of(db, deleted) and events_of(db, toggled), what="both events open")
    with db.transaction() as cur:
        cur.execute("UPDATE rules SET enabled = false WHERE id = %s", (flip,))
    reload_rules(engine, feeder)
    with db.transaction() as cur:
        cur.execute("UPDATE rules SET enabled = true WHERE id = %s", (flip,))
    reload_rules(engine, feeder)
    with db.transaction() as cur:  # no notice: the engine finds out when its state write hits the foreign key
        cur.execute("DELETE FROM rules WHERE id = %s", (gone,))
    for device in (deleted, toggled):
        feeder.send(ingest(device, "t1", 1, now + 1, [("temperature", 61, "Cel")]))
    wait_for(lambda: processed_seq(engine, deleted) == 1 and processed_seq(engine, toggled) == 1, what="both processed")
    [event] = events_of(db, toggled)
    assert (event["count"], event["status"]) == (2, "open")  # the same event continued, no duplicate
    [event] = events_of(db, deleted)
    assert (event["rule_id"], event["count"]) == (None, 1)
