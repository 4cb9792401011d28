"""Series writer: telemetry datagrams to every enabled series store (PostgreSQL rows, InfluxDB points)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from collector.writers import metrics
from collector.writers.decode import DeliveryLike, decode_batch, parse_time
from iothub.contract.ingest import IngestMessage
from iothub.errors import Rejected

WRITER = "series"
MEASUREMENT = "iot_telemetry"
PARTITION_RE = re.compile(r"^telemetry_p(\d{8})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A datagram dated further ahead comes from a broken clock; storing it would create far-future partitions.
MAX_FUTURE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement of a datagram, with its own timestamp."""

    ts: datetime
    metric: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """One telemetry datagram ready for the series stores."""

    msg: IngestMessage
    ts: datetime
    received_at: datetime
    readings: tuple[Reading, ...]


class SeriesStore(Protocol):
    """A series backend; writes are idempotent and raise Unavailable while the store is down."""

    name: str

    def write(self, records: Sequence[SeriesRecord]) -> int:
        """Store the records; returns how many rows/points were sent."""


def to_record(msg: IngestMessage, ts: datetime, now: datetime | None = None) -> SeriesRecord:
    """Validate a telemetry body into a record; raises Rejected when it holds no usable measurements."""
    if ts > (now or datetime.now(UTC)) + MAX_FUTURE:
        raise Rejected("bad_timestamp", f"ts {msg.ts[:40]} is more than {MAX_FUTURE} ahead of the collector")
    items = msg.readings  # measured and derived (metering, issue 13)
    if not items:
        raise Rejected("bad_value", "telemetry without measurements")
    readings = []
    for i, item in enumerate(items):
        try:
            value = float(item["val"])
            reading = Reading(parse_time(item["ts"]), str(item["type"]), value, str(item.get("unit", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Rejected("bad_value", f"measurements[{i}]: {exc}") from None
        if not math.isfinite(value) or not reading.metric:
            raise Rejected("bad_value", f"measurements[{i}] is not a finite named value")
        readings.append(reading)
    try:
        received_at = parse_time(msg.received_at)
    except ValueError:
        received_at = datetime.now(UTC)
    return SeriesRecord(msg, ts, received_at, tuple(readings))


class SeriesWriter:
    """Batch handler: decodes telemetry and writes it to each store (all must succeed before the ack)."""

    def __init__(self, stores: Sequence[SeriesStore]):
        self._stores = list(stores)

    def __call__(self, batch: Sequence[DeliveryLike]) -> dict[int, Rejected]:
        """Store a batch; returns the messages that can never be stored."""
        started = time.monotonic()
        decoded, rejected = decode_batch(batch)
        records = []
        now = datetime.now(UTC)
        for item in decoded:
            if item.msg.msg_type != "telemetry":
                metrics.SKIPPED.labels(WRITER, "not_telemetry").inc()
                continue
            try:
                records.append(to_record(item.msg, item.ts, now))
            except Rejected as exc:
                rejected[item.index] = exc
        for store in self._stores:
            try:
                store.write(records)
            except Exception:
                metrics.STORE_ERRORS.labels(WRITER, store.name).inc()
                raise
        metrics.BATCH_SIZE.labels(WRITER).observe(len(batch))
        metrics.BATCH_SECONDS.labels(WRITER).observe(time.monotonic() - started)
        return rejected


# -- pure helpers of the stores -------------------------------------------------------------------

def partition_name(day: date) -> str:
    """Name of the daily partition holding `day`."""
    return f"telemetry_p{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day a partition name stands for, or None for foreign tables."""
    match = PARTITION_RE.match(name)
    if not match:
        return None
    digits = match.group(1)
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def retention_cutoff(now: datetime, retention_days: int) -> date:
    """First day still kept: partitions of earlier days are dropped, rows before it are not stored."""
    return (now.astimezone(UTC) - timedelta(days=retention_days)).date()


def expired_partitions(names: Sequence[str], cutoff: date) -> list[str]:
    """Partitions whose whole day lies before the cutoff."""
    return sorted(name for name in names if (day := partition_day(name)) is not None and day < cutoff)


def _escape_tag(value: str) -> str:
    value = value.replace("\r", " ").replace("\n", " ").replace("\\", "\\\\")
    return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def to_nanos(ts: datetime) -> int:
    """Exact nanoseconds since the epoch."""
    return (ts - _EPOCH) // timedelta(microseconds=1) * 1000


def line_protocol(record: SeriesRecord) -> list[str]:
    """Influx lines, one per reading: tags device_id, device_type, metric, unit (omitted when empty)."""
    msg = record.msg
    base = f"{MEASUREMENT},device_id={_escape_tag(msg.device_id)},device_type={_escape_tag(msg.device_type)}"
    lines = []
    for reading in record.readings:
        tags = f"{base},metric={_escape_tag(reading.metric)}"
        if reading.unit:
            tags += f",unit={_escape_tag(reading.unit)}"
        lines.append(f"{tags} value={reading.value!r} {to_nanos(reading.ts)}")
    return lines
