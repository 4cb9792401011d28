"""One MQTT connection run on the RabbitMQ publisher's I/O loop through paho's external-loop API.

paho gets no thread of its own: a message, its publish, its confirm and its PUBACK are all handled by the loop
thread, so they never wait for the GIL to pass between two busy I/O threads (the bridge's largest cost before,
docs/benchmarks.md). Everything here runs on the loop thread except `close`, `release` and the supervisor's reads
of `broken` and `pending`.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from pika.adapters.select_connection import IOLoop

# Bound on received-but-unacked messages: past it the loop stops reading the socket, so TCP pushes back on the broker.
MAX_PENDING = 2000
READ_BURST = 500  # packets handled per readable event before the loop serves RabbitMQ again


@dataclass(slots=True)
class Entry:
    """A received message waiting for its ack."""

    mid: int
    qos: int
    done: bool = False


class LoopConnection:
    """A paho client's socket on the loop, and its received messages, acked strictly in arrival order."""

    def __init__(self, client: mqtt.Client):
        self.client = client
        self.entries: collections.deque[Entry] = collections.deque()
        self.lock = threading.Lock()  # close() runs on the supervisor
        self.alive = True
        self.broken = threading.Event()
        self.loop: IOLoop | None = None  # set while attached
        self._fd = -1
        self._events = 0
        self._timer = None
        client.on_socket_register_write = lambda c, u, s: self._want_write(True)
        client.on_socket_unregister_write = lambda c, u, s: self._want_write(False)
        client.on_socket_close = lambda c, u, s: self.detach()  # before paho closes it: its fd may be reused

    @property
    def pending(self) -> int:
        """Messages received and not yet acked."""
        return len(self.entries)

    def add(self, mid: int, qos: int) -> Entry:
        """Remember a message in arrival order."""
        entry = Entry(mid, qos)
        with self.lock:
            self.entries.append(entry)
        return entry

    def settle(self, entry: Entry, ok: bool) -> None:
        """Mark one message done and ack the settled prefix; a failure ends the connection unacked."""
        if not ok:
            self.broken.set()
            return
        with self.lock:
            entry.done = True
            # An earlier failure keeps everything after it unacked: the broker redelivers them in order.
            while self.alive and not self.broken.is_set() and self.entries and self.entries[0].done:
                head = self.entries.popleft()
                self.client.ack(head.mid, head.qos)
        loop = self.loop
        if loop is not None and len(self.entries) < MAX_PENDING and not self._events & loop.READ:
            self._set_events(self._events | loop.READ)  # back-pressure over
            loop.call_later(0, lambda: self.on_events(loop.READ))

    def close(self) -> None:
        """Forget unacked messages: the broker redelivers them on the next session."""
        with self.lock:
            self.alive = False
            self.entries.clear()

    def attach(self, loop: IOLoop) -> None:
        """Watch the socket on the loop (called on it) and start the keepalive tick."""
        sock = self.client.socket()
        if sock is None or self.broken.is_set():
            self.broken.set()
            return
        self.loop, self._fd = loop, sock.fileno()
        self._events = loop.READ | (loop.WRITE if self.client.want_write() else 0)
        loop.add_handler(self._fd, lambda fd, events: self.on_events(events), self._events)
        self._tick()

    def on_events(self, events: int) -> None:
        """Socket readiness: write what paho queued, then read a burst of packets."""
        loop, client = self.loop, self.client
        if loop is None:
            return
        if events & loop.WRITE:
            client.loop_write()
        if not events & loop.READ:
            return
        sock = None
        for _ in range(READ_BURST):  # paho reads one packet per call; the rest of a burst sits in the buffer
            if self.loop is None or self.pending >= MAX_PENDING:
                break
            client.loop_read()
            sock = client.socket()
            if sock is None or not sock.pending():
                break
        if self.loop is None:
            return
        if self.pending >= MAX_PENDING:
            self._set_events(self._events & ~loop.READ)  # back-pressure on the broker until settle() makes room
        elif sock is not None and sock.pending():
            loop.call_later(0, lambda: self.on_events(loop.READ))  # buffered bytes wake no poller

    def detach(self) -> None:
        """Stop watching the socket (on the loop) and mark the connection over."""
        loop, self.loop = self.loop, None
        if loop is not None:
            with contextlib.suppress(Exception):  # already gone with its poller
                loop.remove_handler(self._fd)
            if self._timer is not None:
                loop.remove_timeout(self._timer)
        self.broken.set()

    def release(self, loop: IOLoop, current: Callable[[], IOLoop | None]) -> None:
        """From the supervisor: close the socket on the loop while it runs, else here once it has stopped."""
        done = threading.Event()

        def close() -> None:
            self._close_socket()
            done.set()

        with contextlib.suppress(Exception):  # a closed loop refuses callbacks
            loop.add_callback_threadsafe(close)
        gone = 0
        while not done.wait(0.5):
            # A stopped loop never runs the callback; once it is no longer the publisher's, nobody else touches
            # this client (asked twice: the publisher marks itself down just before its loop stops).
            gone = gone + 1 if current() is not loop else 0
            if gone >= 2:
                self.loop = None
                self._close_socket()
                return

    def _close_socket(self) -> None:
        self.detach()
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _want_write(self, want: bool) -> None:
        loop = self.loop
        if loop is not None:  # before attach() nothing watches the socket: attach() asks paho instead
            self._set_events(self._events | loop.WRITE if want else self._events & ~loop.WRITE)

    def _set_events(self, events: int) -> None:
        if self.loop is not None and events != self._events:
            self._events = events
            self.loop.update_handler(self._fd, events)

    def _tick(self) -> None:
        if self.loop is None:
            return
        if self.client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:  # keepalive ping, or its timeout
            self.broken.set()
        if self.loop is not None:
            self._timer = self.loop.call_later(1.0, self._tick)
