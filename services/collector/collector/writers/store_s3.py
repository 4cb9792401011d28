"""ObjectStore on S3/MinIO through the minio client; connection failures become Unavailable."""

from __future__ import annotations

import io
import threading

import urllib3
from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from iothub.errors import Unavailable

# S3 error codes meaning "try again later" rather than "this request is wrong".
_TRANSIENT = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted"}


class S3ObjectStore:
    """Objects in one bucket, created on first use."""

    def __init__(self, endpoint: str, access_key: str | None, secret_key: str | None, bucket: str, *,
                 secure: bool = False, timeout: float = 10.0):
        # Few quick retries: the consumer's backoff handles long outages without holding a batch hostage.
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout),
                                   retries=urllib3.Retry(total=1, backoff_factor=0.2,
                                                         status_forcelist=(500, 502, 503, 504)),
                                   maxsize=32)  # the archive writer overlaps window round trips
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                             http_client=http)
        self.bucket = bucket
        self._bucket_ready = False
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """The object's bytes or None."""
        self._ensure_bucket()
        response = None
        try:
            response = self._client.get_object(self.bucket, key)
            return response.read()
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return None
            raise self._map(exc) from exc
        except (Urllib3Error, OSError) as exc:
            raise Unavailable(f"s3 get {key}: {exc}") from exc
        finally:
            if response is not None:
                response.close()
                response.release_conn()

    def put(self, key: str, data: bytes) -> None:
        """Create or replace an object."""
        self._ensure_bucket()
        content_type = "application/gzip" if key.endswith(".gz") else "application/x-ndjson"
        try:
            self._client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        except S3Error as exc:
            raise self._map(exc) from exc
        except (Urllib3Error, OSError) as exc:
            raise Unavailable(f"s3 put {key}: {exc}") from exc

    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix, sorted."""
        self._ensure_bucket()
        try:
            return sorted(obj.object_name for obj in self._client.list_objects(self.bucket, prefix, recursive=True))
        except S3Error as exc:
            raise self._map(exc) from exc
        except (Urllib3Error, OSError) as exc:
            raise Unavailable(f"s3 list {prefix}: {exc}") from exc

    def ping(self) -> bool:
        """True when the bucket is reachable (readiness check)."""
        try:
            return self._client.bucket_exists(self.bucket)
        except (S3Error, Urllib3Error, OSError):
            return False

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._lock:
            try:
                if not self._client.bucket_exists(self.bucket):
                    self._client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise self._map(exc) from exc
            except (Urllib3Error, OSError) as exc:
                raise Unavailable(f"s3 bucket {self.bucket}: {exc}") from exc
            self._bucket_ready = True

    def _map(self, exc: S3Error) -> Exception:
        if exc.code == "NoSuchBucket":  # deleted behind our back: create it again on the next attempt
            self._bucket_ready = False
        # Credentials, permissions or a missing bucket are operator problems: waiting (not dropping) is right.
        if exc.code in _TRANSIENT or exc.code in ("AccessDenied", "InvalidAccessKeyId", "NoSuchBucket",
                                                   "SignatureDoesNotMatch"):
            return Unavailable(f"s3: {exc.code}: {exc.message}")
        return RuntimeError(f"s3: {exc.code}: {exc.message}")
