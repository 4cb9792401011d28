"""The raw archive's shared-object key layout, written by the collector and read by the device manager."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from iothub.contract.envelope import MSG_TYPES

# raw/date=YYYY-MM-DD/hour=HH/msg_type=<type>/part-HHMMSS-<32 hex>.ndjson[.gz]: Hive partitions that DuckDB, Athena
# and Spark read as columns; HHMMSS is the window start; the hex is a digest of the object's msg_ids, so the same
# messages always get the same key and two different sets never share one (docs/archive.md).
PREFIX = "raw/"
KEY_RE = re.compile(r"^raw/date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/msg_type=(?P<msg_type>[a-z_]{1,32})/"
                    r"part-(?P<hms>\d{6})-(?P<digest>[0-9a-f]{32})\.ndjson(?P<gz>\.gz)?$")


def window_start(ts: datetime, window_s: int) -> datetime:
    """Start of the epoch-aligned window of window_s seconds (a divisor of 3600) holding ts."""
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, UTC)


def partition(start: datetime, msg_type: str) -> str:
    """The Hive partition prefix of a window's objects."""
    start = start.astimezone(UTC)
    return f"{PREFIX}date={start:%Y-%m-%d}/hour={start:%H}/msg_type={msg_type}/"


def object_key(start: datetime, msg_type: str, msg_ids: Iterable[str], gzip_: bool) -> str:
    """Deterministic key of the object holding exactly these messages of one window and msg_type."""
    digest = hashlib.sha256("\n".join(sorted(msg_ids)).encode()).hexdigest()[:32]
    suffix = ".ndjson.gz" if gzip_ else ".ndjson"
    return f"{partition(start, msg_type)}part-{start.astimezone(UTC):%H%M%S}-{digest}{suffix}"


def parse_key(key: str) -> tuple[str, datetime, bool]:
    """(msg_type, window start, gzip) of a shared-object key; ValueError for anything outside the layout."""
    match = KEY_RE.match(key or "")
    if not match or match.group("msg_type") not in MSG_TYPES:
        raise ValueError("not a raw archive object key")
    hms = match.group("hms")
    start = datetime.fromisoformat(f"{match.group('date')}T{hms[:2]}:{hms[2:4]}:{hms[4:]}+00:00")
    if f"{start:%H}" != match.group("hour"):
        raise ValueError("window start outside its hour partition")
    return match.group("msg_type"), start, bool(match.group("gz"))
