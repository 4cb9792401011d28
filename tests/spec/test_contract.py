"""The spec's own example messages pass IoT Hub's wire contract exactly as published."""

from __future__ import annotations

import orjson
import pytest

from iothub.contract import parse
from iothub.contract.topics import DEVICE_TOPICS
from tests.spec import examples


@pytest.mark.parametrize(("suffix", "raw"), examples.DEVICE_MESSAGES.values(), ids=examples.DEVICE_MESSAGES.keys())
def test_every_spec_example_is_accepted_on_its_topic(suffix, raw):
    body = orjson.loads(raw)
    env = parse(raw, expected_type=DEVICE_TOPICS[suffix], topic_device_id=body["device_id"])
    assert env.device_id == body["device_id"]
    assert env.seq == body.get("seq", -1)
    assert env.ts.isoformat().startswith(body["ts"][:19])  # whole seconds with Z


def test_pf_without_unit_is_dimensionless_and_other_units_stay():
    env = parse(examples.AC_TELEMETRY, expected_type="telemetry")
    pf = [m for m in env.body["measurements"] if m["type"] == "pf"]
    assert len(pf) == 2 and all("unit" not in m for m in pf)  # the body is passed on as the device sent it


def test_a_unit_that_is_present_must_still_be_a_short_string():
    from iothub.contract import InvalidMessage, Reason

    body = orjson.loads(examples.AC_TELEMETRY)
    body["measurements"][3]["unit"] = 7
    with pytest.raises(InvalidMessage) as info:
        parse(orjson.dumps(body))
    assert info.value.reason is Reason.WRONG_TYPE and "measurements[3].unit" in info.value.detail


def test_spec_commands_are_what_the_server_encodes():
    from datetime import datetime

    from iothub.contract.commands import encode_command

    for raw in (examples.COMMAND, examples.START_OTA):
        cmd = orjson.loads(raw)
        ours = encode_command(cmd["cmd_id"], cmd["cmd"], cmd["params"], datetime.fromisoformat(cmd["ts"]))
        assert orjson.loads(ours) == cmd
