"""Pure rules of the writers: archive keys and objects, line protocol, partitions, state collapsing."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from collector.writers.archive import Line, build_objects
from collector.writers.decode import Decoded, decode_batch
from collector.writers.series import expired_partitions, line_protocol, partition_name, retention_cutoff, to_record
from collector.writers.state import collapse
from iothub.contract import archive as layout
from iothub.contract.ingest import IngestMessage, message_id
from iothub.errors import Rejected

T0 = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


class FakeDelivery:
    """Only the attributes writers read."""

    def __init__(self, body: bytes, message_id: str | None = None, headers: dict | None = None):
        self.body, self.message_id, self.headers = body, message_id, headers or {}


def msg(msg_type="telemetry", body=None, *, ts=T0, seq=1, device="d1", received=None, msg_id=None):
    """An IngestMessage with sensible defaults."""
    return IngestMessage(msg_id or f"00000000-0000-0000-0000-{seq:012d}", device, "power_meter_ac", msg_type,
                         ts.isoformat(), seq, 1, (received or ts).isoformat(), "mqtt", body or {})


def line(device="d1", seq=1, ts=T0, msg_type="telemetry"):
    """An archive Line of msg()."""
    m = msg(msg_type, ts=ts, seq=seq, device=device, msg_id=message_id(device, 1, seq))
    return Line(m.msg_id, device, msg_type, ts, seq, m.encode())


def test_shared_keys_are_hive_partitions_named_by_window_and_msg_ids():
    ids = ["b", "a", "c"]
    key = layout.object_key(layout.window_start(T0, 300), "telemetry", ids, True)
    assert key.startswith("raw/date=2026-03-04/hour=05/msg_type=telemetry/part-050500-")
    assert key.endswith(".ndjson.gz") and key == layout.object_key(datetime(2026, 3, 4, 5, 5, tzinfo=UTC),
                                                                   "telemetry", sorted(ids), True)
    assert key != layout.object_key(datetime(2026, 3, 4, 5, 5, tzinfo=UTC), "telemetry", ["a", "b"], True)
    assert layout.parse_key(key) == ("telemetry", datetime(2026, 3, 4, 5, 5, tzinfo=UTC), True)
    for bad in (key.replace("hour=05", "hour=06"), key.replace("telemetry", "secrets"), key + "/x",
                "d1/telemetry/2026/03/04/050500.ndjson", key.replace("raw/", "../raw/")):
        with pytest.raises(ValueError):
            layout.parse_key(bad)


@pytest.mark.parametrize("gz", [False, True])
def test_a_batch_becomes_one_object_per_window_and_msg_type_shared_by_its_devices(gz):
    lines = [line("d2", 1, T0 + timedelta(seconds=2)), line("d1", 1, T0 + timedelta(seconds=1)),
             line("d1", 2, T0 + timedelta(minutes=5)), line("d3", 7, T0, "hello")]
    objects = build_objects(lines, 300, gz)
    assert [(o.msg_type, o.window_start.strftime("%H%M"), [x.device_id for x in o.lines]) for o in objects] == [
        ("hello", "0505", ["d3"]), ("telemetry", "0505", ["d1", "d2"]), ("telemetry", "0510", ["d1"])]
    again = build_objects(list(reversed(lines)), 300, gz)
    assert [(o.key, o.data) for o in again] == [(o.key, o.data) for o in objects]  # a redelivery writes the same
    plain = gzip.decompress(objects[1].data) if gz else objects[1].data
    assert [orjson.loads(raw)["device_id"] for raw in plain.splitlines()] == ["d1", "d2"]


def test_line_protocol_tags_escape_and_omit_empty_unit():
    body = {"measurements": [{"ts": T0.isoformat(), "type": "v dc,x", "val": 230, "unit": "V"},
                             {"ts": T0.isoformat(), "type": "pf", "val": 0.93, "unit": ""}]}
    lines = line_protocol(to_record(msg(body=body), T0))
    assert lines == [
        "iot_telemetry,device_id=d1,device_type=power_meter_ac,metric=v\\ dc\\,x,unit=V value=230.0 "
        "1772600767891000000",
        "iot_telemetry,device_id=d1,device_type=power_meter_ac,metric=pf value=0.93 1772600767891000000",
    ]


def test_telemetry_without_measurements_is_rejected():
    with pytest.raises(Rejected):
        to_record(msg(body={"measurements": []}), T0)
    with pytest.raises(Rejected):
        to_record(msg(body={"measurements": [{"ts": "yesterday", "type": "t", "val": 1, "unit": ""}]}), T0)
    good = {"measurements": [{"ts": T0.isoformat(), "type": "t", "val": 1, "unit": ""}]}
    with pytest.raises(Rejected, match="ahead"):
        to_record(msg(body=good), T0 + timedelta(days=2), now=T0)


def test_partitions_expire_by_whole_days():
    now = datetime(2026, 4, 10, 12, tzinfo=UTC)
    cutoff = retention_cutoff(now, 90)
    assert cutoff == date(2026, 1, 10)
    names = [partition_name(date(2026, 1, 9)), partition_name(cutoff), "telemetry_default", partition_name(now)]
    assert expired_partitions(names, cutoff) == ["telemetry_p20260109"]


def test_decode_rejects_foreign_and_unsafe_messages():
    good = msg()
    unsafe = msg(device="../etc")
    decoded, rejected = decode_batch([FakeDelivery(good.encode()), FakeDelivery(b"{not json"),
                                      FakeDelivery(b'{"msg_id": 1}'), FakeDelivery(unsafe.encode())])
    assert [d.index for d in decoded] == [0]
    assert {i: r.reason for i, r in rejected.items()} == {1: "undecodable", 2: "undecodable", 3: "bad_value"}


def _decoded(*messages):
    return [Decoded(i, m, datetime.fromisoformat(m.ts)) for i, m in enumerate(messages)]


def test_state_collapses_to_newest_facts_per_device():
    later = T0 + timedelta(seconds=30)
    batch, rejected = collapse(_decoded(
        msg("hello", {"fw_version": "2.0.0"}, ts=later, seq=5),
        msg("hello", {"fw_version": "1.0.0"}, ts=T0, seq=4),  # older hello arrives last
        msg("telemetry", ts=T0 + timedelta(seconds=10), seq=6),
        msg("status", {"status": "offline"}, ts=T0 - timedelta(hours=1), seq=-1, received=later + timedelta(1)),
        msg("status", {"status": "sideways"}, seq=-1, msg_id="bad"),
    ))
    assert list(rejected) == [4]
    (state,) = batch.devices
    assert (state.last_seen, state.fw_version, state.status) == (later, "2.0.0", "offline")


def test_state_keeps_first_ack_and_most_advanced_ota_report():
    cmd = "6f1c1b7e-1d2a-4b8e-9a51-0c2f3b4d5e6f"
    batch, rejected = collapse(_decoded(
        msg("command_ack", {"cmd_id": cmd, "result": "accepted"}, seq=1),
        msg("command_ack", {"cmd_id": cmd, "result": "error"}, seq=2, ts=T0 + timedelta(seconds=1)),
        msg("ota_status", {"cmd_id": cmd, "ota_state": "applying", "progress_pct": 90}, seq=4),
        msg("ota_status", {"cmd_id": cmd, "ota_state": "downloading", "progress_pct": 50}, seq=3,
            ts=T0 + timedelta(seconds=5)),
        msg("command_ack", {"cmd_id": "nope", "result": "accepted"}, seq=5),
    ))
    assert list(rejected) == [4]
    assert [a.result for a in batch.acks] == ["accepted"]
    assert [(o.state, o.progress) for o in batch.ota] == [("applying", 90.0)]


@pytest.mark.parametrize(("env", "message"), [
    ({"WRITERS": "series,archive", "ARCHIVE_BACKEND": "s3"}, "S3_ENDPOINT must be set"),
    ({"WRITERS": "series", "SERIES_BACKENDS": "postgres,influxdb"}, "INFLUXDB_URL must be set"),
    ({"WRITERS": "state,bogus"}, "unknown writer 'bogus'"),
    ({"WRITERS": "archive", "ARCHIVE_BACKEND": "tape"}, "ARCHIVE_BACKEND must be s3 or filesystem"),
    ({"WRITERS": "archive", "ARCHIVE_WINDOW_S": "420"}, "ARCHIVE_WINDOW_S must divide 3600"),
])
def test_misconfigured_writers_start_nothing(env, message):
    import threading

    from collector.settings import load
    from collector.writers import start_writers
    from iothub.settings import Env, SettingsError

    before = threading.active_count()
    with pytest.raises(SettingsError, match=message):
        start_writers(load(Env({"IOTHUB_ENV": "development", "HTTP_INGEST_ENABLED": "false",
                                 "AMQP_URL": "amqp://127.0.0.1:1/x", **env})), db=None)
    assert threading.active_count() == before
