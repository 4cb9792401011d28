"""Raw archive: NDJSON objects per (device, category, time window), merged so redelivery never duplicates."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Protocol

import orjson

from collector.writers import metrics
from collector.writers.decode import Decoded, DeliveryLike, decode_batch, parse_time
from iothub.errors import Rejected

log = logging.getLogger(__name__)
WRITER = "archive"


class ObjectStore(Protocol):
    """Where archive objects live (S3 or a directory); failures of the store raise Unavailable."""

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""

    def put(self, key: str, data: bytes) -> None:
        """Create or replace an object."""

    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix, sorted."""


class WindowLocks(Protocol):
    """Serialises writers of the same windows (several collectors consume one queue)."""

    def lock(self, keys: Sequence[str]) -> AbstractContextManager[dict[str, str | None]]:
        """Hold the windows; yields each key's last recorded digest, and saves the digests set in it on exit."""


class LocalWindowLocks:
    """WindowLocks for a single process (one writer per archive)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._digests: dict[str, str | None] = {}

    @contextmanager
    def lock(self, keys: Sequence[str]) -> Iterator[dict[str, str | None]]:
        """Hold every window of this process; digests live in memory."""
        with self._lock:
            digests = {key: self._digests.get(key) for key in keys}
            yield digests
            self._digests.update(digests)


def digest(data: bytes) -> str:
    """Short content digest of an object, to tell whether a cached window is still current."""
    return hashlib.sha256(data).hexdigest()[:32]


def window_key(device_id: str, category: str, ts: datetime, window_s: int, gzip_: bool) -> str:
    """Deterministic key of the window holding ts: {device}/{category}/YYYY/MM/DD/HHMMSS.ndjson[.gz]."""
    epoch = int(ts.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % window_s, UTC)
    suffix = ".ndjson.gz" if gzip_ else ".ndjson"
    return f"{device_id}/{category}/{start:%Y/%m/%d/%H%M%S}{suffix}"


# A line as kept in memory: its sort key (device ts, seq, msg_id) and its NDJSON bytes, so rewriting a window
# only sorts tuples and joins bytes instead of re-parsing and re-serialising every line.
Line = tuple[tuple[datetime, int, str], bytes]


def to_line(raw: bytes) -> tuple[str, Line]:
    """(msg_id, line) of one serialised IngestMessage."""
    item = orjson.loads(raw)
    msg_id = str(item["msg_id"])
    return msg_id, ((parse_time(item["ts"]), int(item.get("seq", -1)), msg_id), raw)


def parse_object(data: bytes, gzip_: bool) -> dict[str, Line]:
    """Lines of an existing object keyed by msg_id."""
    if gzip_:
        data = gzip.decompress(data)
    return dict(to_line(raw) for raw in data.splitlines() if raw.strip())


def render_object(lines: dict[str, Line], gzip_: bool) -> bytes:
    """NDJSON sorted by (ts, seq); gzip with a fixed mtime so equal content gives equal bytes."""
    body = b"".join(raw + b"\n" for _key, raw in sorted(lines.values()))
    return gzip.compress(body, mtime=0) if gzip_ else body


class ArchiveWriter:
    """Batch handler: merges each touched window with what is stored and rewrites it."""

    def __init__(self, store: ObjectStore, *, locks: WindowLocks | None = None, window_s: int = 300,
                 gzip_: bool = False, cache_windows: int = 4096, concurrency: int = 16):
        self._store = store
        # A fleet spreads a batch over as many windows as devices; their object round trips overlap on a pool.
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="archive")
        self._cache_lock = threading.Lock()
        self._locks = locks or LocalWindowLocks()
        self._window_s = window_s
        self._gzip = gzip_
        # key -> (digest of the object we last wrote or read, its lines); valid while the digest is current.
        self._cache: OrderedDict[str, tuple[str, dict[str, Line]]] = OrderedDict()
        self._cache_windows = cache_windows

    def __call__(self, batch: Sequence[DeliveryLike]) -> dict[int, Rejected]:
        """Store a batch; returns the undecodable messages."""
        started = time.monotonic()
        decoded, rejected = decode_batch(batch)
        windows = self._group(decoded)
        if windows:
            with self._locks.lock(sorted(windows)) as digests:
                futures = [self._pool.submit(self._write_window, key, new_lines, digests)
                           for key, new_lines in sorted(windows.items())]
                errors = [f.exception() for f in futures]  # wait for all before the locks are released
                first = next((e for e in errors if e is not None), None)
                if first is not None:
                    raise first
        metrics.BATCH_SIZE.labels(WRITER).observe(len(batch))
        metrics.BATCH_SECONDS.labels(WRITER).observe(time.monotonic() - started)
        return rejected

    def _group(self, decoded: list[Decoded]) -> dict[str, dict[str, Line]]:
        windows: dict[str, dict[str, Line]] = {}
        for item in decoded:
            msg = item.msg
            key = window_key(msg.device_id, msg.msg_type, item.ts, self._window_s, self._gzip)
            # Without derived values (metering, issue 13): the archive is the record of what devices sent.
            raw = dataclasses.replace(msg, derived=()).encode() if msg.derived else msg.encode()
            windows.setdefault(key, {})[msg.msg_id] = ((item.ts, msg.seq, msg.msg_id), raw)
        return windows

    def _write_window(self, key: str, new_lines: dict[str, Line], digests: dict[str, str | None]) -> None:
        existing = self._load(key, digests)
        if new_lines.keys() <= existing.keys():
            metrics.SKIPPED.labels(WRITER, "duplicate").inc(len(new_lines))
            return  # a pure redelivery: the object already holds every line
        merged = {**new_lines, **existing}  # the first stored copy of a msg_id wins
        data = render_object(merged, self._gzip)
        try:
            self._store.put(key, data)
        except Exception:
            metrics.STORE_ERRORS.labels(WRITER, "object_store").inc()
            with self._cache_lock:
                self._cache.pop(key, None)
            raise
        metrics.WRITTEN.labels(WRITER, "objects").inc()
        metrics.WRITTEN.labels(WRITER, "lines").inc(len(merged) - len(existing))
        digests[key] = digest(data)
        self._remember(key, digests[key], merged)

    def _load(self, key: str, digests: dict[str, str | None]) -> dict[str, Line]:
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None and digests.get(key) is not None and cached[0] == digests[key]:
                self._cache.move_to_end(key)
                return cached[1]
        try:
            data = self._store.get(key)
        except Exception:
            metrics.STORE_ERRORS.labels(WRITER, "object_store").inc()
            raise
        if data is None:
            return {}
        try:
            lines = parse_object(data, self._gzip)
        except (ValueError, OSError, EOFError, KeyError):
            # Never silently drop what is archived: keep the damaged object aside, then start the window afresh.
            log.exception("archive object unreadable, preserving it", extra={"key": key})
            self._store.put(f"{key}.corrupt-{int(time.time())}", data)
            return {}
        digests[key] = digest(data)
        self._remember(key, digests[key], lines)
        return lines

    def _remember(self, key: str, content_digest: str, lines: dict[str, Line]) -> None:
        with self._cache_lock:
            self._cache[key] = (content_digest, lines)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_windows:
                self._cache.popitem(last=False)
