"""Device-state writer: last_seen, connection status, firmware, command acks, config and OTA progress."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson

from iothub import topology
from tests.support.poll import wait_for

STATE = topology.STATE_QUEUE.name


def _setup(kit, device):
    """A device with open update_config, reboot and start_ota commands and its OTA job row."""
    row = kit.device(device)
    ids = {name: str(uuid.uuid4()) for name in ("config", "reboot", "ota")}
    expires = datetime.now(UTC) + timedelta(hours=1)
    with kit.db.transaction() as cur:
        cur.execute("INSERT INTO device_configs (device_id, desired, version) VALUES (%s, %s, 2)",
                    (row, orjson.dumps({"send_interval_s": 5}).decode()))
        cur.execute("""INSERT INTO ota_rollouts (fw_version, url, sha256, size_bytes)
                       VALUES ('2.0.0', 'http://fw/2.0.0.bin', %s, 1024) RETURNING id""", ("a" * 64,))
        rollout = cur.fetchone()[0]
        for key, cmd, params in (("config", "update_config", {"config": {"send_interval_s": 5}, "version": 2}),
                                 ("reboot", "reboot", {}), ("ota", "start_ota", {"fw_version": "2.0.0"})):
            cur.execute("""INSERT INTO commands (id, device_id, cmd, params, status, rollout_id, expires_at)
                           VALUES (%s, %s, %s, %s, 'sent', %s, %s)""",
                        (ids[key], row, cmd, orjson.dumps(params).decode(), rollout if key == "ota" else None,
                         expires))
        cur.execute("INSERT INTO ota_device_states (rollout_id, device_id, cmd_id) VALUES (%s, %s, %s)",
                    (rollout, row, ids["ota"]))
    return row, ids


def _snapshot(db, row, ids):
    with db.transaction(dict_rows=True) as cur:
        cur.execute("SELECT last_seen, connection_status, fw_version, broker_connections FROM devices WHERE id = %s",
                    (row,))
        snap = dict(cur.fetchone())
        cur.execute("SELECT id::text, status, detail, acked_at FROM commands WHERE device_id = %s", (row,))
        by_id = {r["id"]: r for r in cur.fetchall()}
        snap["commands"] = {key: (by_id[i]["status"], by_id[i]["detail"]) for key, i in ids.items()}
        cur.execute("SELECT reported, reported_version FROM device_configs WHERE device_id = %s", (row,))
        snap["config"] = tuple(cur.fetchone().values())
        cur.execute("SELECT state, progress_pct FROM ota_device_states WHERE device_id = %s", (row,))
        snap["ota"] = tuple(cur.fetchone().values())
        cur.execute("SELECT cmd_id::text, applied, config, config_version FROM device_config_history "
                    "WHERE device_id = %s", (row,))
        snap["history"] = [tuple(r.values()) for r in cur.fetchall()]
        return snap


def test_state_follows_device_time_and_settles_commands_once(writer_kit):
    kit = writer_kit
    kit.purge(STATE)
    device = f"sta-{kit.uid}"
    row, ids = _setup(kit, device)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    def at(seconds):
        return {"ts": t0 + timedelta(seconds=seconds), "received_at": t0 + timedelta(seconds=seconds + 1)}

    kit.start("state", kit.settings(WRITERS="state"))
    kit.send(
        kit.message(device, "hello", {"fw_version": "1.2.0", "broker_connections": 2}, seq=1, **at(1)),
        kit.message(device, "telemetry", {"measurements": []}, seq=2, **at(2)),
        kit.message(device, "command_ack", {"cmd_id": ids["config"], "result": "accepted"}, seq=3, **at(3)),
        kit.message(device, "command_ack", {"cmd_id": ids["reboot"], "result": "rejected", "detail": "busy"},
                    seq=4, **at(4)),
        kit.message(device, "ota_status", {"cmd_id": ids["ota"], "ota_state": "downloading", "progress_pct": 40,
                                           "fw_version_target": "2.0.0"}, seq=5, **at(5)),
    )
    wait_for(lambda: _snapshot(kit.db, row, ids)["ota"] == ("downloading", 40.0), timeout=20, what="OTA progress")
    kit.send(
        kit.message(device, "ota_status", {"cmd_id": ids["ota"], "ota_state": "success", "progress_pct": 100,
                                           "fw_version_target": "2.0.0"}, seq=6, **at(6)),
        # The LWT carries the time it was registered (old), but fires after everything else was received.
        kit.message(device, "status", {"status": "offline"}, seq=-1, ts=t0, received_at=t0 + timedelta(minutes=1)),
    )
    snap = wait_for(lambda: (s := _snapshot(kit.db, row, ids))["connection_status"] == "offline" and s,
                    timeout=20, what="LWT offline applied")
    assert snap["last_seen"] == t0 + timedelta(seconds=6)
    assert (snap["fw_version"], snap["broker_connections"]) == ("1.2.0", 2)
    assert snap["commands"] == {"config": ("accepted", None), "reboot": ("rejected", "busy"), "ota": ("accepted", None)}
    assert snap["config"] == ({"send_interval_s": 5}, 2)  # an old nested {config, version} command
    assert snap["history"] == [(ids["config"], {"send_interval_s": 5}, {"send_interval_s": 5}, 2)]
    assert snap["ota"] == ("success", 100.0)

    # Late and redelivered messages never rewind state; new traffic brings the device back online.
    kit.send(
        kit.message(device, "hello", {"fw_version": "1.0.0", "broker_connections": 1}, seq=7,
                    ts=t0 - timedelta(hours=1), received_at=t0 + timedelta(minutes=2)),
        kit.message(device, "command_ack", {"cmd_id": ids["reboot"], "result": "accepted"}, seq=8, **at(8)),
        kit.message(device, "command_ack", {"cmd_id": ids["config"], "result": "accepted"}, seq=3, **at(3)),
        kit.message(device, "ota_status", {"cmd_id": ids["ota"], "ota_state": "downloading", "progress_pct": 10,
                                           "fw_version_target": "2.0.0"}, seq=5, **at(5)),
        kit.message(device, "telemetry", {"measurements": []}, seq=9, ts=t0 + timedelta(minutes=5),
                    received_at=t0 + timedelta(minutes=5)),
    )
    # Waiting for the last message's effect: the batch may be split, so "online" alone can come from the hello.
    later = wait_for(lambda: (s := _snapshot(kit.db, row, ids))["connection_status"] == "online"
                     and s["last_seen"] == t0 + timedelta(minutes=5) and s, timeout=20, what="device back online")
    assert {k: v for k, v in later.items() if k not in ("last_seen", "connection_status")} == \
        {k: v for k, v in snap.items() if k not in ("last_seen", "connection_status")}
    assert kit.ready_count(STATE) == 0


def _config_commands(db, row, commands):
    """Insert sent update_config commands [(cmd_id, params, config_version)]."""
    expires = datetime.now(UTC) + timedelta(hours=1)
    with db.transaction() as cur:
        for cmd_id, params, version in commands:
            cur.execute("""INSERT INTO commands (id, device_id, cmd, params, status, config_version, expires_at)
                           VALUES (%s, %s, 'update_config', %s, 'sent', %s, %s)""",
                        (cmd_id, row, orjson.dumps(params).decode(), version, expires))


def test_accepted_flat_update_configs_merge_in_ack_order_and_are_recorded_once(writer_kit):
    from collector.writers.state import Ack, StateBatch
    from collector.writers.state_postgres import PostgresStateStore

    kit, store = writer_kit, PostgresStateStore(writer_kit.db)
    device = f"cfg-{kit.uid}"
    row = kit.device(device)
    with kit.db.transaction() as cur:
        cur.execute("INSERT INTO device_configs (device_id, version, reported, reported_version) VALUES (%s, 4, %s, 1)",
                    (row, orjson.dumps({"send_interval_s": 10, "hello_interval_s": 60}).decode()))
    base = uuid.uuid4().hex[1:]
    # cmd_id order is the reverse of the ack order, so the merge must follow the acks.
    first, second, rejected, direct = (str(uuid.UUID(c + base)) for c in "f0a5")
    brokers = [{"host": "mqtt-a.example", "port": 8883}, {"host": "10.0.0.2", "port": 8883}]
    _config_commands(kit.db, row, [(first, {"send_interval_s": 5, "tls_enabled": False}, 2),
                                   (second, {"send_interval_s": 7, "brokers": brokers}, 3),
                                   (rejected, {"hello_interval_s": 3600}, 4), (direct, {"tls_enabled": True}, None)])
    t0 = datetime.now(UTC).replace(microsecond=0)
    batch = StateBatch(acks=sorted([Ack(first, device, "accepted", None, t0),
                                    Ack(second, device, "accepted", "ok", t0 + timedelta(seconds=1)),
                                    Ack(rejected, device, "rejected", "busy", t0 + timedelta(seconds=2))],
                                   key=lambda a: a.cmd_id))
    store.apply(batch)
    store.apply(batch)  # a redelivered batch changes nothing

    def state():
        with kit.db.transaction(dict_rows=True) as cur:
            cur.execute("SELECT reported, reported_version, reported_at FROM device_configs WHERE device_id = %s",
                        (row,))
            config = tuple(cur.fetchone().values())
            cur.execute("SELECT cmd_id::text, applied, config, config_version, applied_at "
                        "FROM device_config_history WHERE device_id = %s ORDER BY applied_at", (row,))
            return config, [tuple(r.values()) for r in cur.fetchall()]

    after_first = {"send_interval_s": 5, "hello_interval_s": 60, "tls_enabled": False}
    after_second = {**after_first, "send_interval_s": 7, "brokers": brokers}
    config, history = state()
    assert config == (after_second, 3, t0 + timedelta(seconds=1))
    assert history == [(first, {"send_interval_s": 5, "tls_enabled": False}, after_first, 2, t0),
                       (second, {"send_interval_s": 7, "brokers": brokers}, after_second, 3, t0 + timedelta(seconds=1))]

    # A direct update_config carries no desired version: the reported one falls back to the desired version.
    store.apply(StateBatch(acks=[Ack(direct, device, "accepted", None, t0 + timedelta(seconds=3))]))
    config, history = state()
    assert config == ({**after_second, "tls_enabled": True}, 4, t0 + timedelta(seconds=3))
    assert history[-1] == (direct, {"tls_enabled": True}, {**after_second, "tls_enabled": True}, None,
                           t0 + timedelta(seconds=3))
    assert len(history) == 3
