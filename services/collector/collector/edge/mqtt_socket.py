"""A paho client whose socket reads in large chunks: paho reads each packet in 3-4 recv calls."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

CHUNK = 256 * 1024


class BufferedSocket:
    """Serves paho's small reads from one large recv; `pending()` tells paho's loop not to block in select.

    paho asks `pending()` before select() for TLS sockets' buffered bytes; bytes buffered here are the same case.
    """

    def __init__(self, sock):
        self._sock = sock
        self._buf = bytearray()
        self._tls = isinstance(sock, ssl.SSLSocket)

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes: buffered ones first, else one large read (EOF and EAGAIN pass through)."""
        if not self._buf:
            data = self._sock.recv(CHUNK)
            if self._tls:
                data = self._drain_records(data)
            if len(data) <= size:
                return data
            self._buf += data
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def _drain_records(self, data: bytes) -> bytes:
        # A TLS recv returns one record (16 kB at most): take every record already here, as one TCP recv would.
        chunks = [data]
        total = len(data)
        while data and total < CHUNK:
            try:
                data = self._sock.recv(CHUNK - total)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            chunks.append(data)
            total += len(data)
        return b"".join(chunks)

    def pending(self) -> int:
        """Bytes readable without touching the network."""
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) + inner

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class BufferedClient(mqtt.Client):
    """paho's client on a BufferedSocket (TCP and TLS transports; websockets keep paho's own wrapper)."""

    def _create_socket(self):
        sock = super()._create_socket()
        return sock if self._transport == "websockets" else BufferedSocket(sock)
