"""Readiness probes for dependencies the API reaches through other adapters."""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit


def tcp_reachable(url: str, default_port: int, timeout: float = 1.0) -> Callable[[], bool]:
    """A probe that is true when the URL's host accepts TCP connections (cheap: no protocol handshake)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return probe
