"""Protocol v2 envelope validation, table-style."""

from __future__ import annotations

import orjson
import pytest

from iothub.contract import InvalidMessage, Reason, parse
from iothub.contract.topics import parse_device_topic, subscriptions

TS = "2026-11-22T10:00:00Z"
MEAS = [{"ts": TS, "type": "voltage_dc", "val": 750.5, "unit": "V"}]


def telemetry(**over):
    body = {"v": 2, "device_id": "dev-1", "ts": TS, "seq": 7, "msg_type": "telemetry", "measurements": MEAS}
    body.update(over)
    return body


def enc(body) -> bytes:
    return orjson.dumps(body)


VALID = [
    ("telemetry", telemetry(), "telemetry", 7),
    ("hello", {"v": 2, "device_id": "dev-1", "ts": TS, "seq": 0, "msg_type": "hello", "fw_version": "1.2.3",
               "uptime_s": 5, "broker_connections": 1, "buf_usage_pct": 0.5}, "hello", 0),
    ("command_ack", {"v": 2, "device_id": "dev-1", "ts": TS, "seq": 3, "msg_type": "command_ack",
                     "cmd_id": "0b8f5a8e-3f7e-4c1e-9a0a-1c2d3e4f5a6b", "result": "accepted", "detail": ""},
     "command_ack", 3),
    ("ota_status", {"v": 2, "device_id": "dev-1", "ts": TS, "seq": 4, "msg_type": "ota_status",
                    "cmd_id": "0b8f5a8e-3f7e-4c1e-9a0a-1c2d3e4f5a6b", "ota_state": "verifying",
                    "progress_pct": 50, "fw_version_target": "1.3.0", "detail": ""}, "ota_status", 4),
    ("status", {"v": 2, "device_id": "dev-1", "status": "offline", "ts": TS}, "status", -1),
    ("v1 telemetry", {"device_id": "dev-1", "ts": TS, "measurements": MEAS}, "telemetry", -1),
    ("max seq", telemetry(seq=2**32 - 1), "telemetry", 2**32 - 1),
    ("offset ts", telemetry(ts="2026-11-22T12:00:00+02:00"), "telemetry", 7),
]


@pytest.mark.parametrize(("name", "body", "msg_type", "seq"), VALID, ids=[v[0] for v in VALID])
def test_valid_messages_parse(name, body, msg_type, seq):
    env = parse(enc(body))
    assert (env.msg_type, env.seq, env.device_id) == (msg_type, seq, "dev-1")
    assert env.ts.utcoffset().total_seconds() == 0


INVALID = [
    ("malformed", b"{not json", Reason.MALFORMED_JSON),
    ("nan", b'{"v":2,"device_id":"d","ts":"2026-11-22T10:00:00Z","seq":1,"msg_type":"telemetry",'
            b'"measurements":[{"ts":"2026-11-22T10:00:00Z","type":"x","val":NaN,"unit":"V"}]}', Reason.NON_FINITE),
    ("infinity", b'{"v":2,"val":Infinity}', Reason.NON_FINITE),
    ("huge number", enc(telemetry(measurements=[{**MEAS[0], "val": 1.5}])).replace(b"1.5", b"1e400"),
     Reason.NON_FINITE),
    ("not object", b"[1,2]", Reason.WRONG_TYPE),
    ("no device", enc({k: v for k, v in telemetry().items() if k != "device_id"}), Reason.MISSING_FIELD),
    ("bad device id", enc(telemetry(device_id="a/b")), Reason.BAD_VALUE),
    ("seq string", enc(telemetry(seq="7")), Reason.WRONG_TYPE),
    ("seq bool", enc(telemetry(seq=True)), Reason.WRONG_TYPE),
    ("seq negative", enc(telemetry(seq=-1)), Reason.BAD_VALUE),
    ("seq too big", enc(telemetry(seq=2**32)), Reason.BAD_VALUE),
    ("version 3", enc(telemetry(v=3)), Reason.UNSUPPORTED_VERSION),
    ("bad msg_type", enc(telemetry(msg_type="weird")), Reason.BAD_VALUE),
    ("no ts", enc({k: v for k, v in telemetry().items() if k != "ts"}), Reason.MISSING_FIELD),
    ("naive ts", enc(telemetry(ts="2026-11-22T10:00:00")), Reason.BAD_TIMESTAMP),
    ("garbage ts", enc(telemetry(ts="yesterday")), Reason.BAD_TIMESTAMP),
    ("empty measurements", enc(telemetry(measurements=[])), Reason.BAD_VALUE),
    ("201 measurements", enc(telemetry(measurements=MEAS * 201)), Reason.TOO_MANY_MEASUREMENTS),
    ("val string", enc(telemetry(measurements=[{**MEAS[0], "val": "1"}])), Reason.WRONG_TYPE),
    ("too large", b" " * 70000, Reason.TOO_LARGE),
    ("non utf8", b'{"device_id": "\xff\xfe"}', Reason.MALFORMED_JSON),
    ("hello bad semver", enc({"v": 2, "device_id": "d", "ts": TS, "seq": 0, "msg_type": "hello",
                              "fw_version": "one", "uptime_s": 1, "broker_connections": 1, "buf_usage_pct": 1}),
     Reason.BAD_VALUE),
    ("ack bad cmd_id", enc({"v": 2, "device_id": "d", "ts": TS, "seq": 0, "msg_type": "command_ack",
                            "cmd_id": "x", "result": "accepted"}), Reason.BAD_VALUE),
]


@pytest.mark.parametrize(("name", "raw", "reason"), INVALID, ids=[v[0] for v in INVALID])
def test_invalid_messages_are_rejected_with_reason(name, raw, reason):
    with pytest.raises(InvalidMessage) as info:
        parse(raw)
    assert info.value.reason == reason


def test_topic_must_match_body():
    with pytest.raises(InvalidMessage) as info:
        parse(enc(telemetry()), topic_device_id="dev-2")
    assert info.value.reason == Reason.DEVICE_MISMATCH
    with pytest.raises(InvalidMessage) as info:
        parse(enc(telemetry()), expected_type="hello")
    assert info.value.reason == Reason.TOPIC_MISMATCH


def test_topics_round_trip():
    assert parse_device_topic("iot/dev-1/command/ack") == ("dev-1", "command_ack")
    assert parse_device_topic("t1/iot/dev-1/telemetry", prefix="t1/") == ("dev-1", "telemetry")
    assert parse_device_topic("iot/dev-1/unknown") is None
    assert parse_device_topic("iot/a+b/telemetry") is None
    assert "$share/g/iot/+/telemetry" in subscriptions(share_group="g")


def test_trailing_newline_is_not_a_valid_device_id():
    with pytest.raises(InvalidMessage) as info:
        parse(enc(telemetry(device_id="dev-1\n")))
    assert info.value.reason == Reason.BAD_VALUE
