"""Reading use cases: a device's telemetry (points, aggregates, latest), archive objects and raw messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from device_manager.archive.keys import CATEGORIES, ArchiveReader, Download, InvalidKey
from device_manager.service.errors import Invalid, NotFound
from device_manager.telemetry.query import QueryError, SeriesReader, build_query, latest_to_dict, series_to_dict

MAX_RANGE = timedelta(days=31)
DEFAULT_RANGE = timedelta(days=1)


class BadCursor(ValueError):
    """An `after` token that is not a cursor of this listing."""


class DeviceIds(Protocol):
    """Resolves a device UUID to its text id."""

    def text_id(self, device_id) -> str:
        """The text id; NotFound when unknown."""


class RawPages(Protocol):
    """Reads one page of a device's raw archived messages."""

    def __call__(self, device_id: str, start: datetime, end: datetime, after: str | None, limit: int) -> Any:
        """A page with lines, the next cursor and the missing count; BadCursor for a foreign `after`."""


def query_error(exc: QueryError) -> Invalid:
    """A telemetry/archive bound violation as Invalid, naming the query parameter."""
    return Invalid(exc.message, {"query": {exc.field: [exc.message]}})


def time_range(start: datetime | None, end: datetime | None,
               names: tuple[str, str] = ("start", "end")) -> tuple[datetime, datetime]:
    """[start, end) with defaults (the last 24 h) and the 31-day bound; QueryError naming the query parameter."""
    end = end.astimezone(UTC) if end else datetime.now(UTC)
    start = start.astimezone(UTC) if start else end - DEFAULT_RANGE
    if start >= end:
        raise QueryError(names[0], f"must be before {names[1]}")
    if end - start > MAX_RANGE:
        raise QueryError(names[1], f"range is longer than the maximum of {MAX_RANGE.days} days")
    return start, end


class ReadingService:
    """What devices sent: series, archive objects and raw messages."""

    def __init__(self, devices: DeviceIds, series: SeriesReader, archive: ArchiveReader, raw_pages: RawPages):
        self.devices = devices
        self.series = series
        self.archive = archive
        self.raw_pages = raw_pages

    def telemetry(self, device_id, *, start=None, end=None, metrics: tuple[str, ...] = (), every=None,
                  agg=None) -> dict[str, Any]:
        """Points in [start, end), or one value per bucket with every/agg; Invalid beyond the bounds."""
        text_id = self.devices.text_id(device_id)
        try:
            q = build_query(text_id, start=start, end=end, metrics=metrics, every=every, agg=agg)
            return series_to_dict(q, self.series.query(q))
        except QueryError as exc:
            raise query_error(exc) from None

    def latest(self, device_id, metrics: tuple[str, ...] = ()) -> dict[str, Any]:
        """The newest value of each metric (or of the given ones)."""
        text_id = self.devices.text_id(device_id)
        return latest_to_dict(text_id, self.series.latest(text_id, metrics))

    def archive_objects(self, device_id, start, end, categories: tuple[str, ...], limit: int) -> dict[str, Any]:
        """Objects whose window overlaps [start, end), oldest first, at most limit (truncated says more exist)."""
        text_id = self.devices.text_id(device_id)
        try:
            start, end = time_range(start, end)
        except QueryError as exc:
            raise query_error(exc) from None
        found = self.archive.list(text_id, start, end, categories or CATEGORIES, limit=limit)
        return {"device_id": text_id, "start": start, "end": end, "items": found[:limit],
                "truncated": len(found) > limit}

    def open_object(self, device_id, key: str) -> tuple[str, Download]:
        """(text id, open download) of one of the device's archive objects; NotFound for others."""
        text_id = self.devices.text_id(device_id)
        try:
            opened = self.archive.open(text_id, key)
        except InvalidKey:
            opened = None
        if opened is None:
            raise NotFound("Archive object not found", {"key": key[:300]})
        return text_id, opened

    def raw(self, device_id, start, end, after: str | None, limit: int):
        """One page of raw messages with device time in [start, end) after the cursor."""
        text_id = self.devices.text_id(device_id)
        try:
            start, end = time_range(start, end, ("from", "to"))
            return self.raw_pages(text_id, start, end, after, limit)
        except QueryError as exc:
            raise query_error(exc) from None
        except BadCursor:
            raise query_error(QueryError("after", "not a cursor of this listing")) from None
