"""Independent readers of the raw archive's shared objects: what the index makes visible, and the whole bucket."""

from __future__ import annotations

import gzip

import orjson
from minio import Minio

from iothub.contract.archive import PREFIX

INDEXED = """
SELECT m.msg_id::text, o.key FROM archive_messages m JOIN archive_objects o ON o.id = m.object_id
WHERE m.device_id = ANY(%s)
"""


class ArchiveBucket:
    """The archive bucket through the minio client (the suite's SeaweedFS accepts any key)."""

    def __init__(self, port: int, bucket: str):
        self.client = Minio(f"127.0.0.1:{port}", access_key="test", secret_key="testtest", secure=False)
        self.bucket = bucket

    def keys(self) -> list[str]:
        """Every shared object's key, sorted."""
        if not self.client.bucket_exists(self.bucket):
            return []
        return sorted(o.object_name for o in self.client.list_objects(self.bucket, PREFIX, recursive=True))

    def lines(self, key: str) -> list[dict]:
        """One object's messages in stored order."""
        response = self.client.get_object(self.bucket, key)
        try:
            data = response.read()
        finally:
            response.close()
            response.release_conn()
        if key.endswith(".gz"):
            data = gzip.decompress(data)
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]

    def scan(self, devices=None) -> list[dict]:
        """Every line in the bucket (of the given devices), duplicates included: what a bucket-wide query sees."""
        wanted = set(devices) if devices is not None else None
        return [line for key in self.keys() for line in self.lines(key)
                if wanted is None or line["device_id"] in wanted]

    def visible(self, db, devices) -> list[dict]:
        """The devices' lines as readers of the index see them: each indexed msg_id from its indexed object."""
        with db.transaction() as cur:
            cur.execute(INDEXED, (list(devices),))
            rows = cur.fetchall()
        by_key: dict[str, set[str]] = {}
        for msg_id, key in rows:
            by_key.setdefault(key, set()).add(msg_id)
        return [line for key, ids in by_key.items() for line in self.lines(key) if line["msg_id"] in ids]
