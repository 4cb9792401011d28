"""A paho client whose socket reads in large chunks (paho reads each packet in 3-4 recv calls) and whose
acknowledgements leave in one write per batch (paho sends each packet on its own)."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK, PUBCOMP, PUBREC, PUBREL

CHUNK = 256 * 1024
ACKS = {PUBACK, PUBREC, PUBREL, PUBCOMP}


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

    def _packet_write(self):
        self._join_acks()
        return super()._packet_write()

    def _join_acks(self) -> None:
        """Merge the unstarted acknowledgements at the head of the queue into one packet: over TLS every send is a
        record of its own, and the bridge acks a whole settled batch at once (edge/mqtt_loop.py)."""
        out, joined = self._out_packet, []
        while out and (out[0]["command"] & 0xF0) in ACKS and out[0]["pos"] == 0:
            joined.append(out.popleft())  # only this thread takes from the left; others append on the right
        if len(joined) < 2:
            out.extendleft(reversed(joined))
            return
        blob = b"".join(bytes(p["packet"]) for p in joined)
        out.appendleft({"command": PUBACK, "mid": 0, "qos": 0, "pos": 0, "to_process": len(blob), "packet": blob,
                        "info": None})
