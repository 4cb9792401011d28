"""Firmware images in S3 (SeaweedFS locally) through the minio client, and their pre-signed download URLs."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from device_manager.settings import Settings
from iothub.errors import Unavailable

REGION = "us-east-1"  # fixed, so signing a URL never asks the store for its region


class S3Images:
    """ImageStore over one bucket; URLs are signed for the endpoint devices reach (it may differ from ours)."""

    def __init__(self, client: Minio, signer: Minio, bucket: str):
        self._client, self._signer, self.bucket = client, signer, bucket
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, endpoint: str, access_key: str | None, secret_key: str | None, bucket: str, *,
                secure: bool = False, public_endpoint: str | None = None, timeout: float = 30.0) -> S3Images:
        """Build from settings (no network until first use)."""
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3.0, read=timeout),
                                   retries=urllib3.Retry(total=1, backoff_factor=0.2), maxsize=4)
        client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=REGION,
                       http_client=http)
        signer = Minio(public_endpoint or endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                       region=REGION)
        return cls(client, signer, bucket)

    def put(self, key: str, data: BinaryIO, size: int) -> None:
        """Upload one image (the bucket is created on first use)."""
        try:
            self._ensure_bucket()
            self._client.put_object(self.bucket, key, data, size, content_type="application/octet-stream")
        except (S3Error, Urllib3Error, OSError) as exc:
            raise Unavailable(f"firmware store: {exc}") from exc

    def download_url(self, key: str, ttl: timedelta) -> str:
        """Pre-signed GET, computed locally."""
        return self._signer.presigned_get_object(self.bucket, key, expires=ttl)

    def _ensure_bucket(self) -> None:
        with self._lock:
            if not self._ready:
                if not self._client.bucket_exists(self.bucket):
                    self._client.make_bucket(self.bucket)
                self._ready = True


def firmware_images(s: Settings) -> S3Images | None:
    """The firmware store on the deployment's S3, None when no S3_ENDPOINT is set (uploads then answer 503)."""
    if not s.s3_endpoint:
        return None
    return S3Images.connect(s.s3_endpoint, s.s3_access_key, s.s3_secret_key, s.firmware_bucket, secure=s.s3_secure,
                            public_endpoint=s.firmware_public_endpoint)
