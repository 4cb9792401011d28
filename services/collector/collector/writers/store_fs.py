"""ObjectStore on a local directory with the archive's key layout; writes are atomic and fsynced."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from iothub.errors import Unavailable


class FilesystemObjectStore:
    """Objects as files under a root directory (single-node runs)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"key escapes the archive root: {key!r}")
        return path

    def get(self, key: str) -> bytes | None:
        """The file's bytes or None."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Unavailable(f"archive read {key}: {exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        """Write a temp file beside the target, fsync, rename over it, fsync the directory."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:  # disk full, read-only mount: keep the backlog in RabbitMQ
            raise Unavailable(f"archive write {key}: {exc}") from exc

    def list(self, prefix: str) -> list[str]:
        """Keys (relative paths) starting with prefix, sorted; temp files excluded."""
        base = self._path(prefix.rsplit("/", 1)[0]) if "/" in prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith("."):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def ping(self) -> bool:
        """True when the root is a writable directory."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK)
