"""Series and archive reader adapters, chosen by settings and built on first use (after gunicorn forks)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from device_manager.archive.keys import ArchiveReader
from device_manager.archive.raw import Cursor, RawPage, read_page
from device_manager.service.readings import BadCursor
from device_manager.settings import Settings
from device_manager.telemetry import SeriesReader
from iothub.db import Database
from iothub.errors import Unavailable


class Lazy:
    """Stands in for an adapter built on first attribute access (a misconfiguration surfaces as Unavailable
    on the request that needs it, not at start-up)."""

    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._target = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._target is None:
            with self._lock:
                if self._target is None:
                    self._target = self._build()
        return getattr(self._target, name)


def series_reader(settings: Settings, db: Database) -> SeriesReader:
    """The configured series backend (SERIES_BACKEND postgres | influxdb)."""

    def build() -> SeriesReader:
        if settings.series_backend == "influxdb":
            if not settings.influxdb_url:
                raise Unavailable("SERIES_BACKEND is influxdb but INFLUXDB_URL is not set")
            from device_manager.telemetry.influx import InfluxSeries

            return InfluxSeries.connect(settings.influxdb_url, settings.influxdb_token, settings.influxdb_org,
                                        settings.influxdb_bucket)
        from device_manager.telemetry.postgres import PostgresSeries

        return PostgresSeries(db)

    return Lazy(build)  # type: ignore[return-value]


def archive_reader(settings: Settings) -> ArchiveReader:
    """The configured archive backend (ARCHIVE_BACKEND s3 | filesystem)."""

    def build() -> ArchiveReader:
        window = timedelta(seconds=settings.archive_window_s)
        if settings.archive_backend == "filesystem":
            from device_manager.archive.filesystem import FilesystemArchive

            return FilesystemArchive(settings.archive_dir, window=window)
        if not settings.s3_endpoint:
            raise Unavailable("ARCHIVE_BACKEND is s3 but S3_ENDPOINT is not set")
        from device_manager.archive.s3 import S3Archive

        return S3Archive.connect(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                                 settings.s3_bucket, secure=settings.s3_secure, window=window)

    return Lazy(build)  # type: ignore[return-value]


def raw_pages(db: Database, archive: ArchiveReader) -> Callable[..., RawPage]:
    """The raw-message page reader over the archive index and objects."""

    def read(device_id: str, start: datetime, end: datetime, after: str | None, limit: int) -> RawPage:
        try:
            cursor = Cursor.decode(after) if after else None
        except ValueError:
            raise BadCursor(after) from None
        return read_page(db, archive, device_id, start, end, cursor, limit)

    return read
