"""Archive reader on a local directory with the same key layout (single-node runs)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from device_manager.archive.keys import (
    ArchiveObject,
    Download,
    InvalidKey,
    day_prefixes,
    overlaps,
    parse_key,
    shared_key,
)
from iothub.errors import Unavailable

CHUNK = 64 * 1024


class FilesystemArchive:
    """ArchiveReader over files under a root directory."""

    def __init__(self, root: str | Path, *, window: timedelta = timedelta(seconds=300)):
        self.root = Path(root).resolve()
        self._window = window

    def list(self, device_id: str, start: datetime, end: datetime, categories: tuple[str, ...],
             limit: int = 1000) -> list[ArchiveObject]:
        """Objects whose window overlaps [start, end), oldest first; at most limit + 1."""
        found: list[ArchiveObject] = []
        for prefix in day_prefixes(device_id, categories, start, end, self._window):
            directory = self.root / prefix
            try:
                names = sorted(os.listdir(directory))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise Unavailable(f"archive list: {exc}") from exc
            for name in names:
                obj = self._stat(device_id, prefix + name)
                if obj is not None and overlaps(obj.window_start, self._window, start, end):
                    found.append(obj)
        found.sort(key=lambda o: (o.window_start, o.category, o.key))
        return found[:limit + 1]

    def open(self, device_id: str, key: str) -> Download | None:
        """Open the file for streaming; the key is validated before the path is built."""
        category, window_start, gz = parse_key(device_id, key)
        path = self._path(key)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by Download.close after streaming
        except (FileNotFoundError, IsADirectoryError):
            return None
        except OSError as exc:
            raise Unavailable(f"archive read: {exc}") from exc
        size = os.fstat(fh.fileno()).st_size
        obj = ArchiveObject(key, category, window_start, size, None, gz)
        return Download(obj, iter(lambda: fh.read(CHUNK), b""), fh.close)

    def read(self, key: str) -> bytes | None:
        """The whole shared object, or None when absent."""
        path = self._path(shared_key(key))
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
        except OSError as exc:
            raise Unavailable(f"archive read: {exc}") from exc

    def ping(self) -> bool:
        """True when the root is a readable directory (or does not exist yet)."""
        return not self.root.exists() or os.access(self.root, os.R_OK)

    def _path(self, key: str) -> Path:
        # parse_key already allows no '..' or absolute parts; resolving guards against symlinks out of the root.
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidKey("key is not an archive object of this device")
        return path

    def _stat(self, device_id: str, key: str) -> ArchiveObject | None:
        try:
            category, window_start, gz = parse_key(device_id, key)
            st = (self.root / key).lstat()
        except (ValueError, OSError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # symlinks and directories are never served
        return ArchiveObject(key, category, window_start, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), gz)
