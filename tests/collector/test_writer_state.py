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
        cur.execute("SELECT last_seen, connection_status, fw_version FROM devices WHERE id = %s", (row,))
        snap = dict(cur.fetchone())
        cur.execute("SELECT id::text, status, detail, acked_at FROM commands WHERE device_id = %s", (row,))
        by_id = {r["id"]: r for r in cur.fetchall()}
        snap["commands"] = {key: (by_id[i]["status"], by_id[i]["detail"]) for key, i in ids.items()}
        cur.execute("SELECT reported, reported_version FROM device_configs WHERE device_id = %s", (row,))
        snap["config"] = tuple(cur.fetchone().values())
        cur.execute("SELECT state, progress_pct FROM ota_device_states WHERE device_id = %s", (row,))
        snap["ota"] = tuple(cur.fetchone().values())
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
        kit.message(device, "hello", {"fw_version": "1.2.0"}, seq=1, **at(1)),
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
    assert snap["fw_version"] == "1.2.0"
    assert snap["commands"] == {"config": ("accepted", None), "reboot": ("rejected", "busy"), "ota": ("accepted", None)}
    assert snap["config"] == ({"send_interval_s": 5}, 2)
    assert snap["ota"] == ("success", 100.0)

    # Late and redelivered messages never rewind state; new traffic brings the device back online.
    kit.send(
        kit.message(device, "hello", {"fw_version": "1.0.0"}, seq=7, ts=t0 - timedelta(hours=1),
                    received_at=t0 + timedelta(minutes=2)),
        kit.message(device, "command_ack", {"cmd_id": ids["reboot"], "result": "accepted"}, seq=8, **at(8)),
        kit.message(device, "ota_status", {"cmd_id": ids["ota"], "ota_state": "downloading", "progress_pct": 10,
                                           "fw_version_target": "2.0.0"}, seq=5, **at(5)),
        kit.message(device, "telemetry", {"measurements": []}, seq=9, ts=t0 + timedelta(minutes=5),
                    received_at=t0 + timedelta(minutes=5)),
    )
    later = wait_for(lambda: (s := _snapshot(kit.db, row, ids))["connection_status"] == "online" and s,
                     timeout=20, what="device back online")
    assert later["last_seen"] == t0 + timedelta(minutes=5)
    assert {k: v for k, v in later.items() if k not in ("last_seen", "connection_status")} == \
        {k: v for k, v in snap.items() if k not in ("last_seen", "connection_status")}
    assert kit.ready_count(STATE) == 0
