"""Raw archive on SeaweedFS S3 and on the filesystem: layout, merge without duplicates, outage without loss."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from minio import Minio
from prometheus_client import REGISTRY

from iothub import topology
from tests.support.poll import wait_for

ARCHIVE = topology.ARCHIVE_QUEUE.name
WINDOW = 300


def _store_errors() -> float:
    return REGISTRY.get_sample_value("iothub_collector_writer_store_errors_total",
                                     {"writer": "archive", "store": "object_store"}) or 0.0


def _acked() -> float:
    return REGISTRY.get_sample_value("iothub_consumer_messages_total", {"queue": ARCHIVE, "outcome": "stored"}) or 0.0


def _window_start() -> datetime:
    now = int(datetime.now(UTC).timestamp())
    return datetime.fromtimestamp(now - now % WINDOW - 2 * WINDOW, UTC)


def _s3_settings(kit, s3_server, bucket):
    return kit.settings(WRITERS="archive", ARCHIVE_BACKEND="s3", S3_ENDPOINT=f"127.0.0.1:{s3_server.port}",
                        S3_ACCESS_KEY="test", S3_SECRET_KEY="testtest", S3_BUCKET=bucket,
                        ARCHIVE_WINDOW_S=WINDOW)


class S3Reader:
    """Independent view of the bucket through the minio client."""

    def __init__(self, port, bucket):
        self.client = Minio(f"127.0.0.1:{port}", access_key="test", secret_key="testtest", secure=False)
        self.bucket = bucket

    def keys(self, prefix):
        if not self.client.bucket_exists(self.bucket):
            return []
        return sorted(o.object_name for o in self.client.list_objects(self.bucket, prefix, recursive=True))

    def lines(self, key):
        response = self.client.get_object(self.bucket, key)
        try:
            return [orjson.loads(line) for line in response.read().splitlines()]
        finally:
            response.close()
            response.release_conn()


def _layout(device, start):
    day = f"{start:%Y/%m/%d}"
    return (f"{device}/hello/{day}/{start:%H%M%S}.ndjson", f"{device}/telemetry/{day}/{start:%H%M%S}.ndjson",
            f"{device}/telemetry/{(start + timedelta(seconds=WINDOW)):%Y/%m/%d/%H%M%S}.ndjson")


def test_s3_objects_per_window_merge_redeliveries_without_duplicates(writer_kit, s3_server):
    kit = writer_kit
    kit.purge(ARCHIVE)
    device, bucket = f"arc-{kit.uid}", f"arc-{kit.uid}"
    start = _window_start()
    tel = {"measurements": [{"ts": start.isoformat(), "type": "t", "val": 1, "unit": ""}]}
    m1 = kit.message(device, "telemetry", tel, ts=start + timedelta(seconds=10), seq=1)
    m2 = kit.message(device, "telemetry", tel, ts=start + timedelta(seconds=20), seq=2)
    m3 = kit.message(device, "hello", {"fw_version": "1.0.0"}, ts=start + timedelta(seconds=30), seq=3)
    m4 = kit.message(device, "telemetry", tel, ts=start + timedelta(seconds=WINDOW + 5), seq=4)
    kit.send(m2, m1, m3, m4, m1)
    handle = kit.start("archive", _s3_settings(kit, s3_server, bucket))
    reader = S3Reader(s3_server.port, bucket)
    hello_key, tel_key, next_key = _layout(device, start)

    wait_for(lambda: reader.keys(f"{device}/") == sorted([hello_key, tel_key, next_key]), timeout=30,
             what="three window objects")
    lines = reader.lines(tel_key)
    assert [line["seq"] for line in lines] == [1, 2]  # sorted by device ts, the duplicate merged away
    assert lines[0] == orjson.loads(m1.encode())  # raw envelope plus the collector's metadata
    assert [line["seq"] for line in reader.lines(hello_key)] == [3]

    # A fresh writer (cold cache) reads the stored window back before merging the redelivery.
    handle.stop()
    handle.join(15)
    kit.start("archive", _s3_settings(kit, s3_server, bucket))
    m5 = kit.message(device, "telemetry", tel, ts=start + timedelta(seconds=15), seq=5)
    kit.send(m1, m2, m5)
    wait_for(lambda: len(reader.lines(tel_key)) == 3, timeout=30, what="window merged with the new line")
    assert [line["seq"] for line in reader.lines(tel_key)] == [1, 5, 2]
    assert kit.ready_count(ARCHIVE) == 0


def test_filesystem_backend_same_layout_gzip_and_atomic(writer_kit):
    kit = writer_kit
    kit.purge(ARCHIVE)
    device = f"fsa-{kit.uid}"
    start = _window_start()
    settings = kit.settings(WRITERS="archive", ARCHIVE_BACKEND="filesystem", ARCHIVE_GZIP="true",
                            ARCHIVE_WINDOW_S=WINDOW)
    root = kit.settings().archive_dir
    messages = [kit.message(device, "telemetry", {"measurements": []}, ts=start + timedelta(seconds=s), seq=s)
                for s in (3, 1, 2)]
    kit.send(*messages, messages[0])
    kit.start("archive", settings)
    path = f"{root}/{device}/telemetry/{start:%Y/%m/%d/%H%M%S}.ndjson.gz"

    def seqs():
        try:
            with gzip.open(path) as fh:
                return [orjson.loads(line)["seq"] for line in fh]
        except FileNotFoundError:
            return []

    wait_for(lambda: seqs() == [1, 2, 3], timeout=30, what="gzipped window with three lines")
    kit.send(*messages)  # a full redelivery
    kit.send(kit.message(device, "telemetry", {}, ts=start + timedelta(seconds=4), seq=4))
    wait_for(lambda: seqs() == [1, 2, 3, 4], timeout=30, what="redelivery merged without duplicates")
    files = sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())
    assert files == [f"{device}/telemetry/{start:%Y/%m/%d/%H%M%S}.ndjson.gz"]  # no temp files left behind


@pytest.mark.fault
def test_s3_outage_keeps_messages_queued_until_recovery(writer_kit, s3_server):
    kit = writer_kit
    kit.purge(ARCHIVE)
    device, bucket = f"out-{kit.uid}", f"out-{kit.uid}"
    start = _window_start()
    reader = S3Reader(s3_server.port, bucket)
    kit.start("archive", _s3_settings(kit, s3_server, bucket))
    kit.send(kit.message(device, "hello", {"fw_version": "1.0.0"}, ts=start, seq=0))
    wait_for(lambda: reader.keys(f"{device}/"), timeout=30, what="bucket and first object")

    errors = _store_errors()
    s3_server.stop()
    try:
        batch = [kit.message(device, "telemetry", {}, ts=start + timedelta(seconds=i), seq=i) for i in range(1, 41)]
        kit.send(*batch)
        wait_for(lambda: _store_errors() > errors, timeout=30, what="writer hitting the outage")
    finally:
        s3_server.start(timeout=60)
    key = f"{device}/telemetry/{start:%Y/%m/%d/%H%M%S}.ndjson"
    wait_for(lambda: key in reader.keys(f"{device}/") and len(reader.lines(key)) == 40, timeout=90,
             what="all 40 lines after recovery")
    assert [line["seq"] for line in reader.lines(key)] == list(range(1, 41))
    assert kit.ready_count(ARCHIVE) == 0


def test_competing_archive_writers_never_lose_lines(writer_kit, s3_server):
    kit = writer_kit
    kit.purge(ARCHIVE)
    devices, bucket = [f"rep{i}-{kit.uid}" for i in range(3)], f"rep-{kit.uid}"  # odd: round robin mixes
    start = _window_start()
    for _ in range(2):  # two collector replicas consume the same queue
        kit.start("archive", _s3_settings(kit, s3_server, bucket))
    reader = S3Reader(s3_server.port, bucket)
    acked_before = _acked()
    for seq in range(1, 121):
        kit.send(*(kit.message(d, "telemetry", {}, ts=start + timedelta(seconds=seq), seq=seq) for d in devices))
    keys = [f"{d}/telemetry/{start:%Y/%m/%d/%H%M%S}.ndjson" for d in devices]

    def complete():
        return all(k in reader.keys(k.split("/")[0] + "/") and len(reader.lines(k)) == 120 for k in keys)

    wait_for(lambda: _acked() - acked_before >= 360 and kit.ready_count(ARCHIVE) == 0, timeout=60,
             what="every message acked")
    assert complete(), [len(reader.lines(k)) for k in keys]
    for key in keys:
        assert [line["seq"] for line in reader.lines(key)] == list(range(1, 121))
