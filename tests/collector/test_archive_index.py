"""Archive index retention: rows of objects older than ARCHIVE_RETENTION_DAYS go, newer ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.writers.archive import ArchiveWriter
from collector.writers.archive_postgres import PostgresArchiveIndex
from collector.writers.store_fs import FilesystemObjectStore
from tests.collector.test_writer_archive import Delivery


def _count(db, devices) -> int:
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM archive_messages WHERE device_id = ANY(%s)", (devices,))
        return cur.fetchone()[0]


def test_retention_prunes_expired_objects_rows_on_the_first_batch(writer_kit, db, tmp_path, uid):
    kit, old, new = writer_kit, f"old-{uid}", f"new-{uid}"
    start = datetime.now(UTC) - timedelta(days=3)
    store = FilesystemObjectStore(tmp_path)
    ArchiveWriter(store, PostgresArchiveIndex(db), window_s=300)(
        [Delivery(kit.message(old, "telemetry", {}, ts=start, seq=s)) for s in range(3)])
    with db.transaction() as cur:  # as if written three days ago
        cur.execute("UPDATE archive_objects SET created_at = now() - interval '3 days' WHERE id IN "
                    "(SELECT object_id FROM archive_messages WHERE device_id = %s)", (old,))
    assert _count(db, [old]) == 3

    kept = ArchiveWriter(store, PostgresArchiveIndex(db, retention_days=2), window_s=300)
    kept([Delivery(kit.message(new, "telemetry", {}, ts=start, seq=1))])
    assert (_count(db, [old]), _count(db, [new])) == (0, 1)
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM archive_objects WHERE created_at < now() - interval '2 days'")
        assert cur.fetchone()[0] == 0
