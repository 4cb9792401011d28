"""Raw archive: one NDJSON object per batch, window and msg_type, shared by every device in it, indexed by msg_id."""

from __future__ import annotations

import gzip
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from collector.writers import metrics
from collector.writers.decode import Decoded, DeliveryLike, decode_batch
from iothub.contract import archive as layout
from iothub.errors import Rejected, Unavailable

log = logging.getLogger(__name__)
WRITER = "archive"
CONFLICT_RETRIES = 3


class ObjectStore(Protocol):
    """Where archive objects live (S3 or a directory); failures of the store raise Unavailable."""

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""

    def put(self, key: str, data: bytes) -> None:
        """Create or replace an object."""

    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix, sorted."""


@dataclass(frozen=True, slots=True)
class Line:
    """One archived message: what the index records of it and its NDJSON bytes."""

    msg_id: str
    device_id: str
    msg_type: str
    ts: datetime
    seq: int
    raw: bytes


@dataclass(frozen=True)
class ArchiveObject:
    """An object about to be written: its key, partition and lines in (ts, device, seq) order."""

    key: str
    window_start: datetime
    msg_type: str
    lines: tuple[Line, ...]
    data: bytes


class IndexConflict(Exception):
    """Another writer indexed one of the batch's messages after we looked: look again."""


class IndexTransaction(Protocol):
    """One batch's index transaction; committed when its context exits cleanly."""

    archived: set[str]  # msg_ids of the batch that some object already holds

    def record(self, objects: Sequence[ArchiveObject]) -> None:
        """Index the objects and their messages; raises IndexConflict when a message was indexed meanwhile."""


class ArchiveIndex(Protocol):
    """msg_id -> object index: deduplicates redeliveries and finds a device's messages without listing."""

    def begin(self, msg_ids: Sequence[str]) -> AbstractContextManager[IndexTransaction]:
        """Open a transaction knowing which of msg_ids are archived already."""


def render(lines: Sequence[Line], gzip_: bool) -> bytes:
    """NDJSON in the given order; gzip with a fixed mtime so equal content gives equal bytes."""
    body = b"".join(line.raw + b"\n" for line in lines)
    return gzip.compress(body, mtime=0) if gzip_ else body


def build_objects(lines: Sequence[Line], window_s: int, gzip_: bool) -> list[ArchiveObject]:
    """Group lines by (window, msg_type) into objects with deterministic keys and bytes."""
    groups: dict[tuple[datetime, str], list[Line]] = {}
    for line in lines:
        groups.setdefault((layout.window_start(line.ts, window_s), line.msg_type), []).append(line)
    objects = []
    for (start, msg_type), group in sorted(groups.items()):
        group.sort(key=lambda x: (x.ts, x.device_id, x.seq, x.msg_id))
        key = layout.object_key(start, msg_type, (x.msg_id for x in group), gzip_)
        objects.append(ArchiveObject(key, start, msg_type, tuple(group), render(group, gzip_)))
    return objects


class ArchiveWriter:
    """Batch handler: index the batch's new messages, write their objects, commit, and only then return (ack)."""

    def __init__(self, store: ObjectStore, index: ArchiveIndex, *, window_s: int = 300, gzip_: bool = False,
                 concurrency: int = 8):
        self._store = store
        self._index = index
        # A batch spanning a window boundary or several msg_types writes a few objects; overlap their PUTs.
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="archive")
        self._window_s = window_s
        self._gzip = gzip_

    def __call__(self, batch: Sequence[DeliveryLike]) -> dict[int, Rejected]:
        """Store a batch; returns the undecodable messages."""
        started = time.monotonic()
        decoded, rejected = decode_batch(batch)
        unique: dict[str, Decoded] = {}
        for item in decoded:
            try:
                msg_id = str(uuid.UUID(item.msg.msg_id))  # the index's spelling, so lookups compare equal
            except ValueError:
                rejected[item.index] = Rejected("bad_value", "msg_id is not a UUID")
                continue
            # The line carries the spelling readers look up; a copy within the batch: the first wins.
            unique.setdefault(msg_id, item if msg_id == item.msg.msg_id
                              else replace(item, msg=replace(item.msg, msg_id=msg_id)))
        if unique:
            self._store_unique(unique)
        metrics.BATCH_SIZE.labels(WRITER).observe(len(batch))
        metrics.BATCH_SECONDS.labels(WRITER).observe(time.monotonic() - started)
        return rejected

    def _store_unique(self, items: dict[str, Decoded]) -> None:
        for _attempt in range(CONFLICT_RETRIES):
            try:
                with self._index.begin(sorted(items)) as tx:
                    fresh = {msg_id: item for msg_id, item in items.items() if msg_id not in tx.archived}
                    metrics.SKIPPED.labels(WRITER, "duplicate").inc(len(items) - len(fresh))
                    lines = [Line(msg_id, i.msg.device_id, i.msg.msg_type, i.ts, i.msg.seq, _as_sent(i))
                             for msg_id, i in fresh.items()]
                    objects = build_objects(lines, self._window_s, self._gzip)
                    tx.record(objects)  # first, so a racing replica blocks here instead of writing a copy
                    self._put_all(objects)  # durable before the index commits and before the ack
                return
            except IndexConflict:
                log.info("archive batch raced another writer, looking again", extra={"messages": len(items)})
        raise Unavailable(f"archive index kept conflicting {CONFLICT_RETRIES} times")

    def _put_all(self, objects: list[ArchiveObject]) -> None:
        futures = [self._pool.submit(self._store.put, obj.key, obj.data) for obj in objects]
        errors = [f.exception() for f in futures]  # wait for all before the transaction ends
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            metrics.STORE_ERRORS.labels(WRITER, "object_store").inc()
            raise first
        metrics.WRITTEN.labels(WRITER, "objects").inc(len(objects))
        metrics.WRITTEN.labels(WRITER, "lines").inc(sum(len(obj.lines) for obj in objects))


def _as_sent(item: Decoded) -> bytes:
    """The message without derived values (metering, issue 13): the archive is the record of what devices sent."""
    return (replace(item.msg, derived=()) if item.msg.derived else item.msg).encode()
