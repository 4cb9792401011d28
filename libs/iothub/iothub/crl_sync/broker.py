"""Find the broker's process and make it reread its CRL (SIGHUP)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


class BrokerNotFound(Exception):
    """No single broker process to signal."""


def find_pid(pidfile: str | None, process: str, proc: Path = Path("/proc")) -> int:
    """The pid in `pidfile`, else the one process named `process` (as a sidecar sharing the PID namespace sees it)."""
    if pidfile:
        try:
            return int(Path(pidfile).read_text().strip())
        except (OSError, ValueError) as exc:
            raise BrokerNotFound(f"no pid in {pidfile}: {exc}") from None
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == process:
                    found.append(int(entry.name))
            except OSError:  # the process ended while we looked
                continue
    if len(found) != 1:
        # Several: signalling all of them could reach brokers that are not ours (no shared PID namespace).
        raise BrokerNotFound(f"{len(found)} processes named {process!r}: set MQTT_BROKER_PIDFILE or share the "
                             "broker's PID namespace")
    return found[0]


def reload(pidfile: str | None, process: str) -> int:
    """SIGHUP the broker; returns its pid (BrokerNotFound, or OSError when it may not be signalled)."""
    pid = find_pid(pidfile, process)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise BrokerNotFound(f"no process {pid}") from None
    return pid
