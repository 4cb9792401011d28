"""Firmware use cases: take an image in, measure it (SHA-256, size) as the server's own truth, store it, and hand
rollouts a download URL that expires (REQ-OTA-001: the device checks what the server measured here)."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from datetime import timedelta
from typing import Any, BinaryIO, Protocol

from device_manager.service.errors import Invalid, NotFound, Unavailable
from device_manager.service.pagination import Page, PageRequest

CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024


class ImageStore(Protocol):
    """The object store holding images (S3 / SeaweedFS)."""

    def put(self, key: str, data: BinaryIO, size: int) -> None:
        """Store `size` bytes read from `data` under `key`."""

    def download_url(self, key: str, ttl: timedelta) -> str:
        """A pre-signed GET URL valid for `ttl`."""


class FirmwareRecords(Protocol):
    """Where image metadata lives."""

    def create(self, row: dict[str, Any]) -> dict[str, Any]:
        """Insert one image's row; the stored row."""

    def get(self, firmware_id) -> dict[str, Any] | None:
        """One image's row."""

    def list(self, req: PageRequest) -> Page:
        """A page of images."""


class TooLarge(Invalid):
    """The image is larger than FIRMWARE_MAX_BYTES."""


class FirmwareService:
    """Uploaded firmware images."""

    def __init__(self, images: ImageStore | None, records: FirmwareRecords, *, max_bytes: int, url_ttl: timedelta):
        self.images = images
        self.records = records
        self.max_bytes = max_bytes
        self.url_ttl = url_ttl

    def upload(self, fw_version: str, filename: str | None, data: BinaryIO, actor: str) -> dict[str, Any]:
        """Measure and store one image; its row with the server-computed sha256 and size_bytes."""
        images = self._images()
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            sha256, size = self._measure(data, spool)
            if size == 0:
                raise Invalid("The firmware image is empty", {"file": ["Empty."]})
            spool.seek(0)
            firmware_id = uuid.uuid4()
            key = f"firmware/{firmware_id}.bin"
            images.put(key, spool, size)
        return self.records.create({"id": firmware_id, "fw_version": fw_version, "filename": filename,
                                    "object_key": key, "sha256": sha256, "size_bytes": size, "uploaded_by": actor})

    def get(self, firmware_id) -> dict[str, Any]:
        """One image; NotFound when unknown."""
        row = self.records.get(firmware_id)
        if row is None:
            raise NotFound("Firmware not found")
        return row

    def list(self, req: PageRequest) -> Page:
        """A page of images, newest first by default."""
        return self.records.list(req)

    def rollout_source(self, firmware_id) -> dict[str, Any]:
        """What a rollout of this image sends: {firmware_id, fw_version, url (pre-signed, expiring), sha256,
        size_bytes}; an unknown image is a 422 on the rollout."""
        row = self.records.get(firmware_id)
        if row is None:
            raise Invalid("Unknown firmware", {"json": {"firmware_id": ["No such firmware image."]}})
        url = self._images().download_url(row["object_key"], self.url_ttl)
        return {"firmware_id": row["id"], "fw_version": row["fw_version"], "url": url, "sha256": row["sha256"],
                "size_bytes": row["size_bytes"]}

    def _measure(self, data: BinaryIO, spool: BinaryIO) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        while chunk := data.read(CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise TooLarge(f"Firmware images are at most {self.max_bytes} bytes",
                               {"file": [f"Longer than {self.max_bytes} bytes."]})
            digest.update(chunk)
            spool.write(chunk)
        return digest.hexdigest(), size

    def _images(self) -> ImageStore:
        if self.images is None:
            raise Unavailable("no object store configured for firmware (S3_ENDPOINT)")
        return self.images
