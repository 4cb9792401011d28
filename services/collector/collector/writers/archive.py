"""Raw archive: NDJSON objects per (device, category, time window), merged so redelivery never duplicates."""

from __future__ import annotations

import gzip
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
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


def window_key(device_id: str, category: str, ts: datetime, window_s: int, gzip_: bool) -> str:
    """Deterministic key of the window holding ts: {device}/{category}/YYYY/MM/DD/HHMMSS.ndjson[.gz]."""
    epoch = int(ts.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % window_s, UTC)
    suffix = ".ndjson.gz" if gzip_ else ".ndjson"
    return f"{device_id}/{category}/{start:%Y/%m/%d/%H%M%S}{suffix}"


def _sort_key(line: dict) -> tuple[datetime, int, str]:
    return parse_time(line["ts"]), int(line.get("seq", -1)), str(line["msg_id"])


def parse_object(data: bytes, gzip_: bool) -> dict[str, dict]:
    """Lines of an existing object keyed by msg_id."""
    if gzip_:
        data = gzip.decompress(data)
    lines = {}
    for raw in data.splitlines():
        if raw.strip():
            line = orjson.loads(raw)
            lines[str(line["msg_id"])] = line
    return lines


def render_object(lines: dict[str, dict], gzip_: bool) -> bytes:
    """NDJSON sorted by (ts, seq); gzip with a fixed mtime so equal content gives equal bytes."""
    body = b"".join(orjson.dumps(line) + b"\n" for line in sorted(lines.values(), key=_sort_key))
    return gzip.compress(body, mtime=0) if gzip_ else body


class ArchiveWriter:
    """Batch handler: merges each touched window with what is stored and rewrites it."""

    def __init__(self, store: ObjectStore, *, window_s: int = 300, gzip_: bool = False, cache_windows: int = 512):
        self._store = store
        self._window_s = window_s
        self._gzip = gzip_
        self._cache: OrderedDict[str, dict[str, dict]] = OrderedDict()
        self._cache_windows = cache_windows

    def __call__(self, batch: Sequence[DeliveryLike]) -> dict[int, Rejected]:
        """Store a batch; returns the undecodable messages."""
        started = time.monotonic()
        decoded, rejected = decode_batch(batch)
        windows = self._group(decoded)
        for key, new_lines in windows.items():
            self._write_window(key, new_lines)
        metrics.BATCH_SIZE.labels(WRITER).observe(len(batch))
        metrics.BATCH_SECONDS.labels(WRITER).observe(time.monotonic() - started)
        return rejected

    def _group(self, decoded: list[Decoded]) -> dict[str, dict[str, dict]]:
        windows: dict[str, dict[str, dict]] = {}
        for item in decoded:
            msg = item.msg
            key = window_key(msg.device_id, msg.msg_type, item.ts, self._window_s, self._gzip)
            windows.setdefault(key, {})[msg.msg_id] = orjson.loads(msg.encode())
        return windows

    def _write_window(self, key: str, new_lines: dict[str, dict]) -> None:
        existing = self._load(key)
        if new_lines.keys() <= existing.keys():
            metrics.SKIPPED.labels(WRITER, "duplicate").inc(len(new_lines))
            return  # a pure redelivery: the object already holds every line
        merged = {**new_lines, **existing}  # the first stored copy of a msg_id wins
        try:
            self._store.put(key, render_object(merged, self._gzip))
        except Exception:
            metrics.STORE_ERRORS.labels(WRITER, "object_store").inc()
            self._cache.pop(key, None)
            raise
        metrics.WRITTEN.labels(WRITER, "objects").inc()
        metrics.WRITTEN.labels(WRITER, "lines").inc(len(merged) - len(existing))
        self._remember(key, merged)

    def _load(self, key: str) -> dict[str, dict]:
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        try:
            data = self._store.get(key)
        except Exception:
            metrics.STORE_ERRORS.labels(WRITER, "object_store").inc()
            raise
        if data is None:
            return {}
        try:
            return parse_object(data, self._gzip)
        except (ValueError, OSError, EOFError, KeyError):
            # Never silently drop what is archived: keep the damaged object aside, then start the window afresh.
            log.exception("archive object unreadable, preserving it", extra={"key": key})
            self._store.put(f"{key}.corrupt-{int(time.time())}", data)
            return {}

    def _remember(self, key: str, lines: dict[str, dict]) -> None:
        self._cache[key] = lines
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_windows:
            self._cache.popitem(last=False)
