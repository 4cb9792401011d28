"""Raw archive on SeaweedFS S3 and on the filesystem: shared objects per batch, the index, redelivery, outages."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest
from prometheus_client import REGISTRY

from collector.writers.archive import ArchiveWriter
from collector.writers.archive_postgres import PostgresArchiveIndex
from collector.writers.store_s3 import S3ObjectStore
from iothub import topology
from iothub.contract import archive as layout
from tests.support.archive import ArchiveBucket
from tests.support.poll import wait_for

ARCHIVE = topology.ARCHIVE_QUEUE.name
WINDOW = 300


class Delivery:
    """A broker delivery as writers read it; msg_id overrides the body's."""

    def __init__(self, msg, msg_id=None):
        body = orjson.loads(msg.encode())
        body["msg_id"] = msg_id or body["msg_id"]
        self.body, self.headers, self.message_id = orjson.dumps(body), {}, body["msg_id"]


def _store_errors() -> float:
    return REGISTRY.get_sample_value("iothub_collector_writer_store_errors_total",
                                     {"writer": "archive", "store": "object_store"}) or 0.0


def _acked() -> float:
    return REGISTRY.get_sample_value("iothub_consumer_messages_total", {"queue": ARCHIVE, "outcome": "stored"}) or 0.0


def _window_start() -> datetime:
    now = int(datetime.now(UTC).timestamp())
    return datetime.fromtimestamp(now - now % WINDOW - 2 * WINDOW, UTC)


def _s3_settings(kit, s3_server, bucket, **env):
    return kit.settings(WRITERS="archive", ARCHIVE_BACKEND="s3", S3_ENDPOINT=f"127.0.0.1:{s3_server.port}",
                        S3_ACCESS_KEY="test", S3_SECRET_KEY="testtest", S3_BUCKET=bucket,
                        ARCHIVE_WINDOW_S=WINDOW, **env)


def _indexed(db, devices) -> Counter:
    with db.transaction() as cur:
        cur.execute("SELECT device_id, seq FROM archive_messages WHERE device_id = ANY(%s)", (list(devices),))
        return Counter(cur.fetchall())


def _fleet(kit, devices, seqs, start, offset=0):
    return [kit.message(d, "telemetry", {"measurements": []}, ts=start + timedelta(seconds=offset + s), seq=s)
            for s in seqs for d in devices]


def test_many_devices_share_one_object_per_batch_with_hive_keys(writer_kit, s3_server):
    kit = writer_kit
    kit.purge(ARCHIVE)
    devices, bucket = [f"shr{i:02d}-{kit.uid}" for i in range(40)], f"shr-{kit.uid}"
    start = _window_start()
    fleet = _fleet(kit, devices, (1, 2), start)
    hello = kit.message(devices[0], "hello", {"fw_version": "1.0.0"}, ts=start + timedelta(seconds=30), seq=3)
    kit.send(*fleet, hello)  # queued before the writer starts, so its first batch holds all 81
    kit.start("archive", _s3_settings(kit, s3_server, bucket, WRITER_BATCH_SIZE=500))
    archive = ArchiveBucket(s3_server.port, bucket)

    wait_for(lambda: sum(_indexed(kit.db, devices).values()) == 81, timeout=30, what="81 messages indexed")
    keys = archive.keys()
    assert len(keys) == 2, keys  # one telemetry object for 40 devices and one hello object: 2 PUTs, not 81
    by_type = {layout.parse_key(k)[0]: k for k in keys}
    day, hour = f"{start:%Y-%m-%d}", f"{start:%H}"
    assert by_type["telemetry"].startswith(f"raw/date={day}/hour={hour}/msg_type=telemetry/part-{start:%H%M%S}-")
    lines = archive.lines(by_type["telemetry"])
    assert len({line["device_id"] for line in lines}) == 40 and len(lines) == 80
    assert [(line["ts"], line["device_id"]) for line in lines] == sorted((line["ts"], line["device_id"])
                                                                       for line in lines)
    assert lines[0] == orjson.loads(fleet[0].encode())  # the IngestMessage as published
    assert [line["seq"] for line in archive.lines(by_type["hello"])] == [3]
    assert sorted(map(orjson.dumps, archive.visible(kit.db, devices))) == sorted(
        map(orjson.dumps, archive.scan(devices)))  # the index names exactly what the bucket holds


def test_redelivery_in_another_batch_never_doubles_a_message(writer_kit, s3_server):
    kit = writer_kit
    kit.purge(ARCHIVE)
    devices, bucket = [f"red{i}-{kit.uid}" for i in range(5)], f"red-{kit.uid}"
    start = _window_start()
    first = _fleet(kit, devices, range(1, 11), start)
    kit.send(*first)
    handle = kit.start("archive", _s3_settings(kit, s3_server, bucket))
    archive = ArchiveBucket(s3_server.port, bucket)
    wait_for(lambda: sum(_indexed(kit.db, devices).values()) == 50, timeout=30, what="first 50 indexed")
    objects = len(archive.keys())

    # A fresh writer gets the old messages again, interleaved with new ones: a batch of a different shape.
    handle.stop()
    handle.join(15)
    kit.start("archive", _s3_settings(kit, s3_server, bucket))
    new = _fleet(kit, devices, range(11, 16), start)
    kit.send(*[m for pair in zip(first[::2], new, strict=False) for m in pair], *first[1::2])
    wait_for(lambda: sum(_indexed(kit.db, devices).values()) == 75 and kit.ready_count(ARCHIVE) == 0, timeout=30,
             what="new messages indexed, queue drained")
    assert set(_indexed(kit.db, devices).values()) == {1}
    scanned = Counter((line["device_id"], line["seq"]) for line in archive.scan(devices))
    assert len(scanned) == 75 and set(scanned.values()) == {1}  # even a bucket-wide scan sees each once
    assert len(archive.keys()) > objects


def test_the_same_batch_twice_writes_nothing_the_second_time(db, s3_server, uid, writer_kit):
    kit = writer_kit
    store = S3ObjectStore(f"127.0.0.1:{s3_server.port}", "test", "testtest", f"twice-{uid}")
    writer = ArchiveWriter(store, PostgresArchiveIndex(db), window_s=WINDOW, gzip_=True)
    start = _window_start()
    batch = [Delivery(m) for m in _fleet(kit, [f"tw{i}-{uid}" for i in range(20)], (1,), start)]
    assert writer(batch) == {}
    keys = store.list("raw/")
    bodies = {k: store.get(k) for k in keys}
    assert writer(batch) == {} and store.list("raw/") == keys and {k: store.get(k) for k in keys} == bodies
    bad = Delivery(kit.message(f"tw0-{uid}", "telemetry", {}, ts=start, seq=99), msg_id="not-a-uuid")
    assert writer([bad])[0].reason == "bad_value"


def test_filesystem_layout_is_queryable_by_duckdb_with_hive_partitions(writer_kit):
    kit = writer_kit
    kit.purge(ARCHIVE)
    devices = [f"fsa{i}-{kit.uid}" for i in range(3)]
    start = _window_start()
    settings = kit.settings(WRITERS="archive", ARCHIVE_BACKEND="filesystem", ARCHIVE_GZIP="true",
                            ARCHIVE_WINDOW_S=WINDOW)
    root = Path(kit.settings().archive_dir)
    messages = _fleet(kit, devices, (3, 1, 2), start)
    kit.send(*messages, messages[0])
    kit.start("archive", settings)
    wait_for(lambda: sum(_indexed(kit.db, devices).values()) == 9 and kit.ready_count(ARCHIVE) == 0, timeout=30,
             what="nine messages indexed")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files and all(layout.parse_key(f)[2] for f in files)  # gzip objects only, no temp files left behind
    rows = duckdb.execute("""
        SELECT device_id, seq, msg_type, date, hour FROM read_json_auto(?, hive_partitioning = 1,
               hive_types = {'date': DATE, 'hour': INTEGER})
        ORDER BY device_id, seq""", [f"{root}/raw/date=*/hour=*/msg_type=*/*.ndjson.gz"]).fetchall()
    assert rows == [(d, s, "telemetry", start.date(), start.hour) for d in sorted(devices) for s in (1, 2, 3)]


@pytest.mark.fault
def test_s3_outage_keeps_messages_queued_until_recovery(writer_kit, s3_server):
    kit = writer_kit
    kit.purge(ARCHIVE)
    device, bucket = f"out-{kit.uid}", f"out-{kit.uid}"
    start = _window_start()
    archive = ArchiveBucket(s3_server.port, bucket)
    kit.start("archive", _s3_settings(kit, s3_server, bucket))
    kit.send(kit.message(device, "hello", {"fw_version": "1.0.0"}, ts=start, seq=0))
    wait_for(archive.keys, timeout=30, what="bucket and first object")

    errors = _store_errors()
    s3_server.stop()
    try:
        kit.send(*_fleet(kit, [device], range(1, 41), start))
        wait_for(lambda: _store_errors() > errors, timeout=30, what="writer hitting the outage")
        assert sum(_indexed(kit.db, [device]).values()) == 1  # a failed PUT leaves nothing in the index
    finally:
        s3_server.start(timeout=60)
    wait_for(lambda: sum(_indexed(kit.db, [device]).values()) == 41, timeout=90, what="all 41 after recovery")
    telemetry = [line["seq"] for line in archive.visible(kit.db, [device]) if line["msg_type"] == "telemetry"]
    assert sorted(telemetry) == list(range(1, 41))
    assert kit.ready_count(ARCHIVE) == 0


def test_competing_archive_writers_never_lose_or_double_lines(writer_kit, s3_server):
    kit = writer_kit
    kit.purge(ARCHIVE)
    devices, bucket = [f"rep{i}-{kit.uid}" for i in range(3)], f"rep-{kit.uid}"  # odd: round robin mixes
    start = _window_start()
    for _ in range(2):  # two writer replicas consume the same queue
        kit.start("archive", _s3_settings(kit, s3_server, bucket))
    archive = ArchiveBucket(s3_server.port, bucket)
    acked_before = _acked()
    for seq in range(1, 121):
        kit.send(*_fleet(kit, devices, (seq,), start))
    wait_for(lambda: _acked() - acked_before >= 360 and kit.ready_count(ARCHIVE) == 0, timeout=60,
             what="every message acked")
    scanned = Counter((line["device_id"], line["seq"]) for line in archive.scan(devices))
    assert scanned == Counter({(d, s): 1 for d in devices for s in range(1, 121)})
    assert _indexed(kit.db, devices) == scanned
