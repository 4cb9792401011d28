"""Pure rules of the writers: archive keys and merging, line protocol, partitions, state collapsing."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from collector.writers.archive import parse_object, render_object, to_line, window_key
from collector.writers.decode import Decoded, decode_batch
from collector.writers.series import expired_partitions, line_protocol, partition_name, retention_cutoff, to_record
from collector.writers.state import collapse
from iothub.contract.ingest import IngestMessage
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


def test_window_key_is_deterministic_and_aligned():
    assert window_key("d1", "telemetry", T0, 300, False) == "d1/telemetry/2026/03/04/050500.ndjson"
    assert window_key("d1", "hello", T0 + timedelta(minutes=3), 300, True) == "d1/hello/2026/03/04/050500.ndjson.gz"
    assert window_key("d1", "hello", T0 + timedelta(minutes=5), 300, False).endswith("/051000.ndjson")


@pytest.mark.parametrize("gz", [False, True])
def test_archive_object_round_trips_sorted_by_ts_then_seq(gz):
    lines = dict(to_line(m.encode()) for m in (msg(seq=3), msg(seq=2), msg(seq=1, ts=T0 + timedelta(1))))
    data = render_object(lines, gz)
    assert render_object(parse_object(data, gz), gz) == data  # byte-identical rewrite: redelivery is a no-op
    plain = gzip.decompress(data) if gz else data
    assert [orjson.loads(line)["seq"] for line in plain.splitlines()] == [2, 3, 1]


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
])
def test_misconfigured_writers_start_nothing(env, message):
    import threading

    from collector.settings import load
    from collector.writers import start_writers
    from iothub.settings import Env, SettingsError

    before = threading.active_count()
    with pytest.raises(SettingsError, match=message):
        start_writers(load(Env({"AMQP_URL": "amqp://127.0.0.1:1/x", **env})), db=None)
    assert threading.active_count() == before
