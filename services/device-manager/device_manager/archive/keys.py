"""The legacy per-device key layout `{device}/{category}/YYYY/MM/DD/HHMMSS.ndjson[.gz]` and the archive read port."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from iothub.contract import archive as archive_layout
from iothub.contract.envelope import DEVICE_ID_RE, MSG_TYPES

CATEGORIES = MSG_TYPES  # the collector archives each message under its msg_type
_KEY_RE = re.compile(r"^(?P<device>[A-Za-z0-9_-]{1,64})/(?P<category>[a-z_]{1,32})/"
                     r"(?P<y>\d{4})/(?P<mo>\d{2})/(?P<d>\d{2})/(?P<hms>\d{6})\.ndjson(?P<gz>\.gz)?$")


class InvalidKey(ValueError):
    """A key outside the device's archive layout: never read, whatever the backend."""


@dataclass(frozen=True)
class ArchiveObject:
    """One archived window of raw messages."""

    key: str
    category: str
    window_start: datetime
    size: int
    last_modified: datetime | None
    gzip: bool

    @property
    def content_type(self) -> str:
        """MIME type for a download."""
        return "application/gzip" if self.gzip else "application/x-ndjson"


@dataclass(frozen=True)
class Download:
    """An open object: iterate `chunks` once; `close` releases the connection or file."""

    obj: ArchiveObject
    chunks: Iterator[bytes]
    close: Callable[[], None]


class ArchiveReader(Protocol):
    """Read side of the archive (S3 or a directory)."""

    def list(self, device_id: str, start: datetime, end: datetime, categories: tuple[str, ...],
             limit: int = 1000) -> list[ArchiveObject]:
        """Objects whose window overlaps [start, end), oldest first; at most limit + 1 (to detect truncation)."""
        ...

    def open(self, device_id: str, key: str) -> Download | None:
        """The object for download, None when absent; raises InvalidKey for keys outside the device's layout."""
        ...

    def read(self, key: str) -> bytes | None:
        """A whole shared object (raw/..., iothub.contract.archive), None when absent; InvalidKey otherwise."""
        ...


def shared_key(key: str) -> str:
    """The key when it names a shared object of the raw/ layout; InvalidKey otherwise."""
    try:
        archive_layout.parse_key(key)
    except ValueError:
        raise InvalidKey("key is not a raw archive object") from None
    return key


def parse_key(device_id: str, key: str) -> tuple[str, datetime, bool]:
    """Check that key is one of the device's archive objects; returns (category, window start, gzip)."""
    if not DEVICE_ID_RE.match(device_id or ""):
        raise InvalidKey("device id is not valid")
    match = _KEY_RE.match(key or "")
    if not match or match.group("device") != device_id or match.group("category") not in CATEGORIES:
        raise InvalidKey("key is not an archive object of this device")
    hms = match.group("hms")
    try:
        start = datetime(int(match.group("y")), int(match.group("mo")), int(match.group("d")),
                         int(hms[:2]), int(hms[2:4]), int(hms[4:]), tzinfo=UTC)
    except ValueError:
        raise InvalidKey("key names an impossible date") from None
    return match.group("category"), start, bool(match.group("gz"))


def day_prefixes(device_id: str, categories: tuple[str, ...], start: datetime, end: datetime,
                 window: timedelta) -> list[str]:
    """The per-day prefixes that can hold windows overlapping [start, end)."""
    first = (start - window).astimezone(UTC).date()
    last = end.astimezone(UTC).date()
    prefixes = []
    for category in categories:
        day = first
        while day <= last:
            prefixes.append(f"{device_id}/{category}/{day:%Y/%m/%d}/")
            day += timedelta(days=1)
    return prefixes


def overlaps(window_start: datetime, window: timedelta, start: datetime, end: datetime) -> bool:
    """Whether the window [window_start, window_start + window) meets [start, end)."""
    return window_start < end and window_start + window > start
