"""Row batches to CSV or Parquet bytes, one chunk per batch, so an export never holds the whole range in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
_ARROW = {"text": pa.string(), "float": pa.float64(), "int": pa.int64(), "time": pa.timestamp("us", tz="UTC")}


@dataclass(frozen=True, slots=True)
class Column:
    """One exported column; kind is text, float, int or time."""

    name: str
    kind: str


def encode(fmt: str, columns: Sequence[Column], batches: Iterable[Sequence[tuple]]) -> Iterator[bytes]:
    """The export's bytes in chunks (a header first, then one chunk per batch)."""
    if fmt == "csv":
        return _csv(columns, batches)
    if fmt == "parquet":
        return _parquet(columns, batches)
    raise ValueError(f"unknown export format {fmt!r}")


def _text(value) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return "" if value is None else value


def _csv(columns: Sequence[Column], batches: Iterable[Sequence[tuple]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    times = [i for i, c in enumerate(columns) if c.kind == "time"]
    for batch in batches:
        rows = [[_text(v) if i in times else v for i, v in enumerate(row)] for row in batch] if times else batch
        writer.writerows(rows)
        yield _take(buf).encode()
    yield _take(buf).encode()


def _take(buf: io.StringIO) -> str:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text


class _Sink(io.RawIOBase):
    """A write-only file that hands over what was written since the last take()."""

    def __init__(self):
        super().__init__()
        self._chunks: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._pos += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _parquet(columns: Sequence[Column], batches: Iterable[Sequence[tuple]]) -> Iterator[bytes]:
    schema = pa.schema([pa.field(c.name, _ARROW[c.kind]) for c in columns])
    sink = _Sink()
    # One row group per batch: ParquetWriter flushes each to the sink, and the chunk goes to the client.
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for rows in batches:
            if not rows:
                continue
            arrays = [pa.array(list(values), type=field.type) for values, field in zip(zip(*rows, strict=True),
                                                                                       schema, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=len(rows))
            yield sink.take()
    yield sink.take()
