"""Copies legacy per-device archive objects into shared objects and the index (`python -m` this module)."""

# Uses the collector's settings; safe to rerun and beside running writers, since the index skips what it holds.

from __future__ import annotations

import gzip
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from collector import settings as collector_settings
from collector.writers.archive import ArchiveWriter, ObjectStore
from collector.writers.archive_postgres import PostgresArchiveIndex
from iothub.db import Database

log = logging.getLogger(__name__)
# {device}/{category}/YYYY/MM/DD/HHMMSS.ndjson[.gz], the layout before shared objects (preserved .corrupt-* excluded)
LEGACY_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}/[a-z_]{1,32}/\d{4}/\d{2}/\d{2}/\d{6}\.ndjson(\.gz)?$")
BATCH = 1000


@dataclass(frozen=True, slots=True)
class LegacyLine:
    """A stored line presented as a delivery; legacy lines are IngestMessages as published."""

    body: bytes
    headers: dict
    message_id: str | None = None


@dataclass
class BackfillReport:
    """What one run did."""

    objects: int = 0
    lines: int = 0
    rejected: int = 0


def legacy_lines(store: ObjectStore, keys: list[str]) -> Iterator[bytes]:
    """Every non-empty line of the given legacy objects, object by object."""
    for key in keys:
        data = store.get(key)
        if data is None:
            continue  # removed since the listing
        if key.endswith(".gz"):
            data = gzip.decompress(data)
        yield from (line for line in data.splitlines() if line.strip())


def backfill(store: ObjectStore, writer: ArchiveWriter, *, batch: int = BATCH) -> BackfillReport:
    """Feed every legacy object's lines through the writer in batches; lines it cannot decode are counted."""
    keys = [key for key in store.list("") if LEGACY_KEY.match(key)]
    report = BackfillReport(objects=len(keys))
    pending: list[LegacyLine] = []
    for line in legacy_lines(store, keys):
        pending.append(LegacyLine(line, {}))
        if len(pending) >= batch:
            report.rejected += len(writer(pending))
            report.lines += len(pending)
            pending = []
    if pending:
        report.rejected += len(writer(pending))
        report.lines += len(pending)
    return report


def main() -> int:
    """Run once with the collector's settings; prints the report."""
    from collector.writers.runner import build_object_store

    logging.basicConfig(level=logging.INFO)
    settings = collector_settings.load()
    db = Database(settings.database_url, maxconn=2, application_name="archive-backfill")
    try:
        store = build_object_store(settings)
        writer = ArchiveWriter(store, PostgresArchiveIndex(db), window_s=settings.archive_window_s,
                               gzip_=settings.archive_gzip)
        report = backfill(store, writer)
    finally:
        db.close()
    print(f"legacy objects {report.objects}, lines {report.lines}, undecodable {report.rejected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
