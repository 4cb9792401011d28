"""Firmware download and verification off the fleet's thread: size and SHA-256 against start_ota (REQ-OTA-001)."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

import requests

CHUNK = 64 * 1024


def fetch_and_check(url: str, sha256: str, size: int, timeout: float) -> str:
    """'' when the image at `url` has exactly `size` bytes hashing to `sha256`, otherwise why not."""
    digest, got = hashlib.sha256(), 0
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            if response.status_code != 200:
                return f"download failed: HTTP {response.status_code}"
            for chunk in response.iter_content(CHUNK):
                got += len(chunk)
                if got > size:  # a larger image is wrong whatever it hashes to; stop reading it
                    return f"size mismatch: more than {size} bytes"
                digest.update(chunk)
    except requests.RequestException as exc:
        return f"download failed: {type(exc).__name__}"
    if got != size:
        return f"size mismatch: {got} bytes, expected {size}"
    if digest.hexdigest() != sha256:
        return "sha256 mismatch"
    return ""


class Downloader:
    """A small pool, so a fleet-wide rollout neither blocks the fleet's thread nor opens a connection per device."""

    def __init__(self, workers: int = 4, timeout: float = 30.0):
        self.timeout = timeout
        self._pool: ThreadPoolExecutor | None = None
        self._workers = workers

    def submit(self, url: str, sha256: str, size: int) -> Future[str]:
        """Start one download; the future's result is fetch_and_check's."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="ota-download")
        return self._pool.submit(fetch_and_check, url, sha256, size, self.timeout)

    def close(self) -> None:
        """Stop the workers (downloads in flight finish)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
