"""Legacy per-device archive objects become shared objects and index rows; a rerun adds nothing."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, datetime, timedelta

from collector.writers.archive import ArchiveWriter
from collector.writers.archive_backfill import backfill
from collector.writers.archive_postgres import PostgresArchiveIndex
from collector.writers.store_s3 import S3ObjectStore
from tests.support.archive import ArchiveBucket

T0 = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)


def test_backfill_copies_legacy_windows_once_and_skips_foreign_objects(writer_kit, s3_server, db, uid):
    kit, bucket = writer_kit, f"bf-{uid}"
    store = S3ObjectStore(f"127.0.0.1:{s3_server.port}", "test", "testtest", bucket)
    devices = [f"bf{i}-{uid}" for i in range(3)]
    for n, device in enumerate(devices):
        for window in range(2):
            start = T0 + timedelta(minutes=5 * window)
            lines = [kit.message(device, "telemetry", {}, ts=start + timedelta(seconds=s), seq=10 * window + s)
                     for s in range(4)]
            body = b"".join(m.encode() + b"\n" for m in lines)
            key = f"{device}/telemetry/{start:%Y/%m/%d/%H%M%S}.ndjson"
            if n == 0:
                store.put(key + ".gz", gzip.compress(body))
            else:
                store.put(key, body)
    store.put(f"{devices[0]}/telemetry/2026/02/01/100000.ndjson.corrupt-1", b"garbage")  # preserved, not copied
    writer = ArchiveWriter(store, PostgresArchiveIndex(db), window_s=300, gzip_=True)

    report = backfill(store, writer, batch=7)
    assert (report.objects, report.lines, report.rejected) == (6, 24, 0)
    archive = ArchiveBucket(s3_server.port, bucket)
    expected = Counter({(d, 10 * w + s): 1 for d in devices for w in range(2) for s in range(4)})
    assert Counter((x["device_id"], x["seq"]) for x in archive.visible(db, devices)) == expected
    shared = archive.keys()
    assert len(shared) < 24 and all(k.startswith("raw/date=2026-02-01/hour=10/msg_type=telemetry/") for k in shared)

    again = backfill(store, writer, batch=5)  # other batch boundaries: still nothing new
    assert again.lines == 24 and archive.keys() == shared
    assert Counter((x["device_id"], x["seq"]) for x in archive.scan(devices)) == expected
