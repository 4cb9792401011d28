"""A device's archived raw messages over a time range: the index names the objects, the objects hold the lines."""

from __future__ import annotations

import base64
import gzip
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from device_manager.archive.keys import ArchiveReader
from iothub.db import Database

log = logging.getLogger(__name__)
MIN_SEQ = -(2**63)
ZERO_ID = "00000000-0000-0000-0000-000000000000"
FETCH_THREADS = 8  # a page of a big fleet's device touches one shared object per message; overlap the GETs

PAGE = """
SELECT m.msg_id::text, m.ts, m.seq, o.key FROM archive_messages m JOIN archive_objects o ON o.id = m.object_id
WHERE m.device_id = %s AND m.ts >= %s AND m.ts < %s AND (m.ts, m.seq, m.msg_id) > (%s, %s, %s::uuid)
ORDER BY m.ts, m.seq, m.msg_id LIMIT %s
"""
_pool = ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="raw-archive")


@dataclass(frozen=True)
class Cursor:
    """Position after the last message of a page, in the (ts, seq, msg_id) order of the listing."""

    ts: datetime
    seq: int
    msg_id: str

    def encode(self) -> str:
        """Opaque URL-safe text."""
        return base64.urlsafe_b64encode(f"{self.ts.isoformat()}|{self.seq}|{self.msg_id}".encode()).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse encode()'s output; ValueError for anything else."""
        try:
            ts, seq, msg_id = base64.urlsafe_b64decode(text.encode()).decode().split("|")
            parsed = datetime.fromisoformat(ts)
            if parsed.tzinfo is None:
                raise ValueError("naive time")
            if not MIN_SEQ <= int(seq) < 2**63:  # a bigint in the index
                raise ValueError("seq out of range")
            return cls(parsed.astimezone(UTC), int(seq), str(uuid.UUID(msg_id)))
        except (ValueError, UnicodeError, OverflowError) as exc:
            raise ValueError("not a cursor of this listing") from exc


@dataclass(frozen=True)
class Indexed:
    """One archived message as the index knows it."""

    msg_id: str
    ts: datetime
    seq: int
    key: str


@dataclass(frozen=True)
class RawPage:
    """Up to limit messages in time order; `after` continues the listing, `missing` counts expired objects' lines."""

    lines: list[bytes]
    after: Cursor | None
    missing: int


def find(db: Database, device_id: str, start: datetime, end: datetime, after: Cursor | None,
         limit: int) -> list[Indexed]:
    """The index rows of the device's messages in [start, end) after the cursor; at most limit + 1."""
    pos = (after.ts, after.seq, after.msg_id) if after else (start, MIN_SEQ, ZERO_ID)
    with db.transaction() as cur:
        cur.execute(PAGE, (device_id, start, end, *pos, limit + 1))
        return [Indexed(*row) for row in cur.fetchall()]


def pick(data: bytes, gz: bool, device_id: str, wanted: set[str]) -> dict[str, bytes]:
    """The lines of wanted msg_ids (and this device) in one shared object, found without parsing the others."""
    body = gzip.decompress(data) if gz else data
    found: dict[str, bytes] = {}
    for msg_id in wanted:
        at = body.find(f'"msg_id":"{msg_id}"'.encode())
        if at < 0:
            continue
        end = body.find(b"\n", at)
        line = body[body.rfind(b"\n", 0, at) + 1:end if end >= 0 else len(body)]
        item = orjson.loads(line)
        if item.get("msg_id") == msg_id and item.get("device_id") == device_id:  # never another device's line
            found[msg_id] = line
    return found


def read_page(db: Database, reader: ArchiveReader, device_id: str, start: datetime, end: datetime,
              after: Cursor | None, limit: int) -> RawPage:
    """One page of the device's raw messages: index lookup, then each named object read once."""
    rows = find(db, device_id, start, end, after, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    by_key: dict[str, set[str]] = {}
    for row in rows:
        by_key.setdefault(row.key, set()).add(row.msg_id)

    def fetch(key: str) -> dict[str, bytes]:
        data = reader.read(key)
        if data is None:
            log.warning("indexed archive object is missing", extra={"key": key})
            return {}
        return pick(data, key.endswith(".gz"), device_id, by_key[key])

    lines: dict[str, bytes] = {}
    for found in _pool.map(fetch, list(by_key)):
        lines.update(found)
    ordered = [lines[row.msg_id] for row in rows if row.msg_id in lines]
    last = rows[-1] if rows else None
    cursor = Cursor(last.ts, last.seq, last.msg_id) if more and last else None
    return RawPage(ordered, cursor, len(rows) - len(ordered))


def ndjson(page: RawPage) -> Iterator[bytes]:
    """The page as NDJSON, one line per message."""
    for line in page.lines:
        yield line + b"\n"
