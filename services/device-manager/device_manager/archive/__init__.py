"""Raw archive reader: list a device's archived windows and stream one, from S3 or a directory."""

from device_manager.archive.keys import CATEGORIES, ArchiveObject, ArchiveReader, Download, InvalidKey, parse_key

__all__ = ["CATEGORIES", "ArchiveObject", "ArchiveReader", "Download", "InvalidKey", "parse_key"]
