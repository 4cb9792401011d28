"""Archive reader on S3 through the minio client: legacy per-day listings and downloads, shared objects."""

from __future__ import annotations

from datetime import datetime, timedelta

import urllib3
from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from device_manager.archive.keys import ArchiveObject, Download, day_prefixes, overlaps, parse_key, shared_key
from iothub.errors import Unavailable

CHUNK = 64 * 1024


class S3Archive:
    """ArchiveReader over one bucket laid out by the collector's archive writer."""

    def __init__(self, client: Minio, bucket: str, *, window: timedelta = timedelta(seconds=300)):
        self._client = client
        self.bucket = bucket
        self._window = window

    @classmethod
    def connect(cls, endpoint: str, access_key: str | None, secret_key: str | None, bucket: str, *,
                secure: bool = False, timeout: float = 10.0, window: timedelta = timedelta(seconds=300)) -> S3Archive:
        """Build from connection settings; few retries so an outage answers 503 quickly."""
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout),
                                   retries=urllib3.Retry(total=1, backoff_factor=0.2), maxsize=8)
        client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, http_client=http)
        return cls(client, bucket, window=window)

    def list(self, device_id: str, start: datetime, end: datetime, categories: tuple[str, ...],
             limit: int = 1000) -> list[ArchiveObject]:
        """Objects whose window overlaps [start, end), oldest first; at most limit + 1 (to detect truncation)."""
        found: list[ArchiveObject] = []
        for prefix in day_prefixes(device_id, categories, start, end, self._window):
            for item in self._list_prefix(prefix):
                obj = self._to_object(device_id, item)
                if obj is not None and overlaps(obj.window_start, self._window, start, end):
                    found.append(obj)
        found.sort(key=lambda o: (o.window_start, o.category, o.key))
        return found[:limit + 1]

    def open(self, device_id: str, key: str) -> Download | None:
        """Stream the object; the key is validated against the device's layout before any request."""
        category, window_start, gz = parse_key(device_id, key)
        response = self._get(key)
        if response is None:
            return None
        size = int(response.headers.get("Content-Length") or 0)
        obj = ArchiveObject(key, category, window_start, size, None, gz)
        return Download(obj, response.stream(CHUNK), lambda: _release(response))

    def read(self, key: str) -> bytes | None:
        """The whole shared object, or None when absent (expired by the bucket's lifecycle rule)."""
        response = self._get(shared_key(key))
        if response is None:
            return None
        try:
            return response.read()
        except (Urllib3Error, OSError) as exc:
            raise Unavailable(f"s3 read: {exc}") from exc
        finally:
            _release(response)

    def _get(self, key: str):
        try:
            return self._client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                return None
            raise Unavailable(f"s3: {exc.code}") from exc
        except (Urllib3Error, OSError) as exc:
            raise Unavailable(f"s3 get: {exc}") from exc

    def ping(self) -> bool:
        """True when the bucket answers."""
        try:
            self._client.bucket_exists(self.bucket)
            return True
        except (S3Error, Urllib3Error, OSError):
            return False

    def _list_prefix(self, prefix: str):
        try:
            return list(self._client.list_objects(self.bucket, prefix, recursive=True))
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return []  # nothing archived yet
            raise Unavailable(f"s3: {exc.code}") from exc
        except (Urllib3Error, OSError) as exc:
            raise Unavailable(f"s3 list: {exc}") from exc

    @staticmethod
    def _to_object(device_id: str, item) -> ArchiveObject | None:
        try:
            category, window_start, gz = parse_key(device_id, item.object_name)
        except ValueError:
            return None  # e.g. a preserved .corrupt-* object: not served
        return ArchiveObject(item.object_name, category, window_start, int(item.size or 0), item.last_modified, gz)


def _release(response) -> None:
    """Give the connection back to the pool."""
    response.close()
    response.release_conn()
