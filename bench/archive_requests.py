"""Object-store requests per 1,000 archived messages at 10,000 devices: the legacy writer vs the shared layout.

Usage: `python -m bench.archive_requests [--devices 10000] [--per-device 10] [--batch 500]`
(`--legacy-rev REV` loads the per-device writer from git; the shared writer needs the local PostgreSQL and
creates and drops its own database). Counts calls into an in-memory object store, so the figure is requests,
not seconds: each counted call is one S3 round trip in production.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2

from iothub.contract.ingest import IngestMessage, message_id

ROOT = Path(__file__).resolve().parents[1]
LEGACY_PATH = "services/collector/collector/writers/archive.py"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class CountingStore:
    """In-memory ObjectStore that counts every call, one per S3 request."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()

    def get(self, key: str) -> bytes | None:
        """GET."""
        self.calls["get"] += 1
        return self.objects.get(key)

    def put(self, key: str, data: bytes) -> None:
        """PUT."""
        self.calls["put"] += 1
        self.objects[key] = data

    def list(self, prefix: str) -> list[str]:
        """LIST (one page)."""
        self.calls["list"] += 1
        return sorted(k for k in self.objects if k.startswith(prefix))


class Delivery:
    """What writers read from a broker delivery."""

    def __init__(self, msg: IngestMessage):
        self.body, self.headers, self.message_id = msg.encode(), {}, msg.msg_id


def workload(devices: int, per_device: int, interval_s: int) -> list[Delivery]:
    """Every device sends one telemetry message every interval_s; the queue interleaves the fleet in time order."""
    out = []
    for k in range(per_device):
        for d in range(devices):
            device = f"meter-{d:05d}"
            ts = T0 + timedelta(seconds=k * interval_s + d * interval_s / devices)
            body = {"measurements": [{"ts": ts.isoformat(), "type": "voltage_dc", "val": 230.0, "unit": "V"}]}
            out.append(Delivery(IngestMessage(message_id(device, 1, k), device, "power_meter_dc", "telemetry",
                                              ts.isoformat(), k, 1, ts.isoformat(), "mqtt", body)))
    return out


def legacy_writer(rev: str, store: CountingStore, window_s: int):
    """The per-device read-merge-write writer as it was at rev."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{LEGACY_PATH}"], check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("legacy_archive")
    sys.modules[module.__name__] = module  # dataclass/Protocol machinery looks the module up by name
    exec(compile(source, f"{rev}:{LEGACY_PATH}", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module.ArchiveWriter(store, window_s=window_s), None


def shared_writer(store: CountingStore, window_s: int):
    """The shared-object writer on a scratch database with the schema applied."""
    from collector.writers.archive import ArchiveWriter
    from collector.writers.archive_postgres import PostgresArchiveIndex
    from iothub.db import Database
    from iothub.db.migrate import apply

    name = f"iothub_archive_bench_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    apply(dsn)
    db = Database(dsn, maxconn=4, application_name="archive-bench")
    return ArchiveWriter(store, PostgresArchiveIndex(db), window_s=window_s, gzip_=True), (db, name)


def _admin(statement: str) -> None:
    conn = psycopg2.connect(ADMIN_DSN)
    conn.autocommit = True
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


def run(kind: str, args) -> dict:
    """Feed the workload through one writer in batches; the counted requests per 1,000 messages."""
    store = CountingStore()
    writer, scratch = legacy_writer(args.legacy_rev, store, args.window) if kind == "legacy" else \
        shared_writer(store, args.window)
    messages = workload(args.devices, args.per_device, args.interval)
    try:
        for i in range(0, len(messages), args.batch):
            writer(messages[i:i + args.batch])
        redelivered = Counter(store.calls)
        writer(messages[:args.batch])  # one redelivered batch: what does idempotency cost?
        redelivery = sum((store.calls - redelivered).values())
    finally:
        if scratch is not None:
            scratch[0].close()
            _admin(f'DROP DATABASE IF EXISTS "{scratch[1]}"')
    total = sum(redelivered.values())
    return {"kind": kind, "messages": len(messages), "objects": len(store.objects), "calls": dict(redelivered),
            "per_1000": 1000 * total / len(messages), "redelivery_calls": redelivery}


def main(argv: list[str] | None = None) -> int:
    """Print the figures for both writers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000, help="devices in the fleet (default 10,000)")
    parser.add_argument("--per-device", type=int, default=10, help="messages per device (default 10)")
    parser.add_argument("--interval", type=int, default=30, help="seconds between a device's messages (default 30)")
    parser.add_argument("--batch", type=int, default=500, help="writer batch size (WRITER_BATCH_SIZE, default 500)")
    parser.add_argument("--window", type=int, default=300, help="ARCHIVE_WINDOW_S (default 300)")
    parser.add_argument("--legacy-rev", default="d6a15c1", help="git revision of the per-device writer")
    parser.add_argument("--only", choices=("legacy", "shared"), help="measure one writer only")
    args = parser.parse_args(argv)
    print(f"{args.devices} devices x {args.per_device} messages, one per {args.interval} s, batches of {args.batch},"
          f" {args.window} s windows")
    for kind in [args.only] if args.only else ["legacy", "shared"]:
        r = run(kind, args)
        calls = ", ".join(f"{k} {v}" for k, v in sorted(r["calls"].items()))
        print(f"{kind:>7}: {r['per_1000']:8.1f} requests per 1,000 messages ({calls}; {r['objects']} objects for "
              f"{r['messages']} messages); a redelivered batch of {args.batch}: {r['redelivery_calls']} requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
