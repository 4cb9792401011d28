"""Invalid device messages are dead-lettered with their reason and counted, and never stall the stream."""

from __future__ import annotations

import orjson
import pytest

from iothub import topology
from iothub.contract import Reason
from tests.collector.conftest import sample, telemetry
from tests.support.poll import wait_for


def _payload(kind: str, dev: str) -> tuple[str, bytes]:
    """(topic suffix, raw bytes) of one kind of broken message."""
    good = telemetry(dev, 1)
    cases = {
        "malformed_json": ("telemetry", b'{"device_id": "' + dev.encode() + b'", "ts": '),
        "unknown_device": ("telemetry", orjson.dumps(telemetry("nobody-" + dev, 1))),
        "wrong_type": ("telemetry", orjson.dumps({**good, "seq": "one"})),
        "non_finite": ("telemetry", orjson.dumps(good).replace(b"20.5", b"NaN")),
        "too_many_measurements": ("telemetry", orjson.dumps(telemetry(dev, 1, n=201))),
        "too_large": ("telemetry", orjson.dumps({**good, "pad": "x" * 70_000})),
        "topic_mismatch": ("hello", orjson.dumps(good)),
        "device_mismatch": ("telemetry", orjson.dumps(telemetry(dev + "x", 1))),
        "missing_field": ("telemetry", orjson.dumps({k: v for k, v in good.items() if k != "ts"})),
        "unknown_topic": ("telemetry", orjson.dumps(good)),  # sent on iot/bad.id/telemetry
        "status_v_not_int": ("status", orjson.dumps({"device_id": dev, "ts": good["ts"], "status": "online",
                                                      "v": "two"})),
    }
    return cases[kind]


KINDS = ["malformed_json", "unknown_device", "wrong_type", "non_finite", "too_many_measurements", "too_large",
         "topic_mismatch", "device_mismatch", "missing_field", "unknown_topic", "status_v_not_int"]
REASONS = {"status_v_not_int": Reason.WRONG_TYPE}


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_message_is_dead_lettered_with_reason_and_counted(kind, edge, device, make_device, tap):
    dev = make_device()
    dead = tap(topology.DEAD_LETTER_EXCHANGE, [""])
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    suffix, raw = _payload(kind, dev)
    topic_device = {"unknown_topic": "bad.id", "unknown_device": "nobody-" + dev}.get(kind, dev)
    topic = f"{device.prefix}iot/{topic_device}/{suffix}"
    reason = REASONS.get(kind) or Reason(kind)
    before = sample("iothub_collector_messages_rejected_total", source="mqtt", reason=reason.value)
    device.send(dev, raw, topic=topic)
    device.send(dev, telemetry(dev, 2))  # the stream goes on behind the bad message

    def parked():
        return [(p, b) for p, b in dead.drain() if p.headers.get(topology.DL_ROUTING_KEY) == topic]

    props, body = wait_for(parked, what=f"dead letter for {kind}")[0]
    assert body == raw
    assert props.headers[topology.DL_REASON] == reason.value
    assert props.headers[topology.DL_SOURCE] == "mqtt"
    assert props.headers[topology.DL_DETAIL]
    name = "iothub_collector_messages_rejected_total"
    wait_for(lambda: sample(name, source="mqtt", reason=reason.value) - before == 1, what="rejection counted")
    assert [b["seq"] for b in wait_for(out.bodies, what="the next good message")] == [2]
