"""Publish -> archived latency: poll the archive's new shared objects and note when a sampled device's line appears."""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from minio import Minio


@dataclass
class ArchiveProbe:
    """Polls every `interval` s; first_seen maps (device_id, seq) to the wall time it was first listed."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    devices: list[str]
    interval: float = 0.5
    first_seen: dict[tuple[str, int], float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _etags: dict[str, str] = field(default_factory=dict)
    _lines: dict[str, Counter] = field(default_factory=dict)  # object -> (device_id, seq) lines in its last version
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ArchiveProbe:
        """Poll on a daemon thread."""
        self._client = Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False)
        self._thread = threading.Thread(target=self._run, name="archive-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[tuple[str, int], int]:
        """Stop polling, take one last look; return how often each (device_id, seq) stands in the archive."""
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        with contextlib.suppress(Exception):  # no bucket yet: nothing archived, which the report counts as lost
            self._poll()
        return self.lines()

    def lines(self) -> dict[tuple[str, int], int]:
        """How often each (device_id, seq) stands in the archive as last polled."""
        total: Counter = Counter()
        with self._lock:
            for lines in self._lines.values():
                total.update(lines)
        return dict(total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # bucket not created yet, or S3 briefly busy
                self._poll()

    def _poll(self) -> None:
        # Shared objects are written once and never rewritten: read each new key once, keep the sampled devices.
        now = time.time()
        wanted = set(self.devices)
        for obj in self._client.list_objects(self.bucket, prefix="raw/", recursive=True):
            if "msg_type=telemetry/" not in obj.object_name or obj.object_name in self._etags:
                continue
            self._etags[obj.object_name] = obj.etag
            data = self._client.get_object(self.bucket, obj.object_name).read()
            if obj.object_name.endswith(".gz"):
                data = gzip.decompress(data)
            lines: Counter = Counter()
            for line in data.splitlines():
                rec = orjson.loads(line)
                if rec["device_id"] in wanted:
                    lines[(rec["device_id"], rec["seq"])] += 1
                    self.first_seen.setdefault((rec["device_id"], rec["seq"]), now)
            with self._lock:
                self._lines[obj.object_name] = lines
