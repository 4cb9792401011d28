"""The v2 firmware spec's example messages (its section 12, as in ../shared/reference/device-spec-v2.md), verbatim."""

from __future__ import annotations

DC_TELEMETRY = (
    b'{"v": 2, "device_id": "dc-meter-007", "ts": "2026-02-12T10:00:10Z", "seq": 142, "msg_type": "telemetry",'
    b' "measurements": [{"ts": "2026-02-12T10:00:01Z", "type": "voltage_dc", "val": 756.3, "unit": "V"},'
    b' {"ts": "2026-02-12T10:00:01Z", "type": "current_dc", "val": 312.8, "unit": "A"},'
    b' {"ts": "2026-02-12T10:00:02Z", "type": "voltage_dc", "val": 754.1, "unit": "V"},'
    b' {"ts": "2026-02-12T10:00:02Z", "type": "current_dc", "val": 315.2, "unit": "A"}]}')
AC_TELEMETRY = (
    b'{"v": 2, "device_id": "ac-meter-101", "ts": "2026-02-12T10:00:10Z", "seq": 87, "msg_type": "telemetry",'
    b' "measurements": [{"ts": "2026-02-12T10:00:01Z", "type": "voltage_ac", "val": 25123, "unit": "V"},'
    b' {"ts": "2026-02-12T10:00:01Z", "type": "current_ac", "val": 142.5, "unit": "A"},'
    b' {"ts": "2026-02-12T10:00:01Z", "type": "frequency", "val": 50.02, "unit": "Hz"},'
    b' {"ts": "2026-02-12T10:00:01Z", "type": "pf", "val": 0.97},'
    b' {"ts": "2026-02-12T10:00:02Z", "type": "voltage_ac", "val": 25087, "unit": "V"},'
    b' {"ts": "2026-02-12T10:00:02Z", "type": "current_ac", "val": 145.1, "unit": "A"},'
    b' {"ts": "2026-02-12T10:00:02Z", "type": "frequency", "val": 50.01, "unit": "Hz"},'
    b' {"ts": "2026-02-12T10:00:02Z", "type": "pf", "val": 0.96}]}')
HELLO = (b'{"v": 2, "device_id": "dc-meter-007", "ts": "2026-02-12T10:00:30Z", "seq": 145, "msg_type": "hello",'
         b' "fw_version": "2.1.0", "uptime_s": 86400, "broker_connections": 2, "buf_usage_pct": 5,'
         b' "temp_internal": 38.2}')
COMMAND = (b'{"v": 2, "cmd_id": "c5d6e7f8-1a2b-3c4d-5e6f-7a8b9c0d1e2f", "ts": "2026-02-12T10:10:00Z",'
           b' "cmd": "update_config", "params": {"send_interval_s": 5}}')
ACK = (b'{"v": 2, "device_id": "dc-meter-007", "ts": "2026-02-12T10:10:01Z", "seq": 160, "msg_type": "command_ack",'
       b' "cmd_id": "c5d6e7f8-1a2b-3c4d-5e6f-7a8b9c0d1e2f", "result": "accepted",'
       b' "detail": "send_interval_s updated to 5"}')
START_OTA = (b'{"v": 2, "cmd_id": "b4e8f1a2-3c5d-6e7f-8a9b-0c1d2e3f4a5b", "ts": "2026-02-12T11:00:00Z",'
             b' "cmd": "start_ota", "params": {"fw_version": "2.2.0",'
             b' "fw_url": "https://ota.example.com/firmware/dc-meter/2.2.0.bin",'
             b' "fw_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",'
             b' "fw_size_bytes": 524288}}')
OTA_STATUS = (b'{"v": 2, "device_id": "dc-meter-007", "ts": "2026-02-12T11:00:30Z", "seq": 200,'
              b' "msg_type": "ota_status", "cmd_id": "b4e8f1a2-3c5d-6e7f-8a9b-0c1d2e3f4a5b",'
              b' "ota_state": "downloading", "progress_pct": 50, "fw_version_target": "2.2.0"}')
ONLINE = b'{"v": 2, "device_id": "dc-meter-007", "ts": "2026-02-12T10:00:00Z", "status": "online"}'
OFFLINE = b'{"v": 2, "device_id": "dc-meter-007", "ts": "2026-02-12T09:55:00Z", "status": "offline"}'

# Each device message with the topic suffix it is published on.
DEVICE_MESSAGES = {
    "dc telemetry": ("telemetry", DC_TELEMETRY),
    "ac telemetry": ("telemetry", AC_TELEMETRY),
    "hello": ("hello", HELLO),
    "command ack": ("command/ack", ACK),
    "ota status": ("ota/status", OTA_STATUS),
    "online": ("status", ONLINE),
    "last will": ("status", OFFLINE),
}
