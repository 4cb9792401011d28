"""Benchmark ledger: the publish time of every sequenced message, for loss and latency analysis."""

from __future__ import annotations

import os


class CsvLedger:
    """Appends device_id,epoch,seq,msg_type,publish_ts rows (publish_ts: Unix seconds, microsecond precision)."""

    HEADER = "device_id,epoch,seq,msg_type,publish_ts\n"

    def __init__(self, path: str):
        fresh = not os.path.exists(path) or os.path.getsize(path) == 0
        self._file = open(path, "a", encoding="utf-8", buffering=1 << 20)  # noqa: SIM115 - lives as long as the run
        if fresh:
            self._file.write(self.HEADER)

    def record(self, device_id: str, epoch: int, seq: int, msg_type: str, ts: float) -> None:
        """Append one row."""
        self._file.write(f"{device_id},{epoch},{seq},{msg_type},{ts:.6f}\n")

    def close(self) -> None:
        """Flush and close."""
        self._file.close()
