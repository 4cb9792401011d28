"""Thread-safe RabbitMQ publisher with pipelined publisher confirms on one pika SelectConnection."""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pika
from pika.adapters.select_connection import SelectConnection
from pika.spec import Basic

from iothub import topology
from iothub.errors import Unavailable
from iothub.rabbit import bundle
from iothub.rabbit.supervise import parameters

log = logging.getLogger(__name__)
Confirm = Callable[[bool], None]


@dataclass(slots=True)
class _Pending:
    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    on_confirm: Confirm
    bundle: str | None = None  # routing key of a bundle this message may travel in
    order: str = ""  # messages with the same order key never overtake each other


class ConfirmPublisher:
    """Publishes from any thread; `on_confirm(True)` runs once RabbitMQ has the message durably.

    Confirms are pipelined: many messages are in flight at once and the broker's (multiple)
    acks settle them in order. On nack or connection loss every unsettled message is settled
    with False; the caller decides whether to retry. The connection is re-established with backoff.
    """

    def __init__(self, url: str, *, name: str = "publisher", declare: bool = True,
                 max_backoff: float = 10.0, on_state: Callable[[bool], None] | None = None,
                 max_unconfirmed: int | None = None, partitions: int = 0):
        self._params = parameters(url, name)
        self._declare = declare
        self._partitions = partitions  # ingest partitions to declare with the topology (iothub.topology.declare)
        self._max_backoff = max_backoff
        self._on_state = on_state
        self._queue: collections.deque[_Pending] = collections.deque()
        self._unconfirmed: collections.OrderedDict[int, Confirm] = collections.OrderedDict()
        self._tag = 0
        self._conn: SelectConnection | None = None
        self._channel = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = 0.5
        self._drain_scheduled = False
        # With a window, messages wait here while that many AMQP messages await their confirm: bundles then
        # grow with the broker's confirm latency instead of going out a few messages at a time.
        self._window = max_unconfirmed

    # -- public API -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True while a confirm channel is open."""
        return self._ready.is_set()

    @property
    def ioloop(self):
        """The I/O loop of the open confirm channel (None while down): other adapters may run on it."""
        conn = self._conn
        return conn.ioloop if conn is not None and self._ready.is_set() else None

    @property
    def in_flight(self) -> int:
        """Messages published but not yet confirmed."""
        return len(self._unconfirmed) + len(self._queue)

    def start(self, timeout: float = 15.0) -> ConfirmPublisher:
        """Start the I/O thread and wait for the first channel."""
        self._thread = threading.Thread(target=self._run, name="rabbit-publisher", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise Unavailable("RabbitMQ: publisher channel not open")
        return self

    def wait_ready(self, timeout: float) -> bool:
        """Block until a channel is open or the timeout passes."""
        return self._ready.wait(timeout)

    def publish(self, exchange: str, routing_key: str, body: bytes, on_confirm: Confirm, *,
                message_id: str | None = None, headers: dict | None = None,
                content_type: str = "application/json", bundle: str | None = None, order: str | None = None) -> None:
        """Queue a persistent message; on_confirm runs on the I/O thread, so keep it short.

        With `bundle` (a routing key; JSON without headers only) it may share one AMQP message, routed by that
        key, with other messages queued for the same exchange and bundle key (iothub.rabbit.bundle); a message
        that finds no company goes out as itself, under its own routing key. Gathering a bundle never moves a
        message ahead of an earlier one with the same `order` key (default: the routing key).
        """
        if not self._ready.is_set():
            on_confirm(False)
            return
        props = pika.BasicProperties(delivery_mode=2, content_type=content_type,
                                     message_id=message_id, headers=headers)
        bundleable = headers is None and content_type == "application/json" and b"\n" not in body
        self._queue.append(_Pending(exchange, routing_key, body, props, on_confirm, bundle if bundleable else None,
                                    routing_key if order is None else order))
        conn = self._conn
        # One wake-up per burst, not per message: waking the I/O loop was the publisher's largest cost.
        if conn is not None and not self._drain_scheduled:
            self._drain_scheduled = True
            # A closing loop raises here; the reconnect path publishes or settles the queue.
            with contextlib.suppress(Exception):
                conn.ioloop.add_callback_threadsafe(self._drain)

    def publish_wait(self, exchange: str, routing_key: str, body: bytes, *, timeout: float = 10.0,
                     **kwargs) -> bool:
        """Publish and block until confirmed; for low-rate callers such as HTTP handlers."""
        done = threading.Event()
        result: list[bool] = []

        def settle(ok: bool) -> None:
            result.append(ok)
            done.set()

        self.publish(exchange, routing_key, body, settle, **kwargs)
        return done.wait(timeout) and result[0]

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection after settling what is in flight (best effort within timeout)."""
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):  # already closed
                conn.ioloop.add_callback_threadsafe(self._close)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- I/O thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._declare:
                    self._declare_topology()
                self._conn = SelectConnection(self._params, on_open_callback=self._on_open,
                                              on_open_error_callback=self._on_open_error,
                                              on_close_callback=self._on_closed)
                self._conn.ioloop.start()
            except Exception as exc:  # keep the I/O thread alive through any broker failure
                log.warning("publisher connection failed", extra={"error": str(exc)})
            self._set_ready(False)
            self._fail_all()
            if self._stopping.wait(self._backoff):
                break
            self._backoff = min(self._backoff * 2, self._max_backoff)

    def _declare_topology(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            topology.declare(conn.channel(), self._partitions)
        finally:
            conn.close()

    def _on_open(self, conn) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_open_error(self, conn, exc) -> None:
        log.warning("publisher cannot connect", extra={"error": str(exc)})
        conn.ioloop.stop()

    def _on_closed(self, conn, reason) -> None:
        self._set_ready(False)
        self._channel = None
        conn.ioloop.stop()

    def _on_channel(self, channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(self._on_delivery, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame) -> None:
        self._tag = 0
        self._backoff = 0.5
        self._set_ready(True)
        self._drain()

    def _on_channel_closed(self, channel, reason) -> None:
        log.warning("publisher channel closed", extra={"error": str(reason)})
        self._set_ready(False)
        if self._conn is not None and self._conn.is_open:
            self._conn.close()

    def _drain(self) -> None:
        channel = self._channel
        while True:
            if channel is None or not channel.is_open:
                self._drain_scheduled = False  # the reconnect path drains or settles the queue
                return
            while self._queue:
                if self._window and len(self._unconfirmed) >= self._window:
                    return  # the flag stays set, so publishers need not wake us: the next confirm drains
                self._send(channel, self._queue.popleft())
            self._drain_scheduled = False
            if not self._queue:
                return
            self._drain_scheduled = True  # queued between our last look and the flag: take it now

    def _send(self, channel, item: _Pending) -> None:
        group = self._take_bundle(item) if item.bundle else [item]
        self._tag += 1
        if len(group) == 1:
            self._unconfirmed[self._tag] = item.on_confirm
            channel.basic_publish(item.exchange, item.routing_key, item.body, item.properties)
            return
        body, headers = bundle.pack([bundle.Part(p.body, p.routing_key, p.properties.message_id) for p in group])
        self._unconfirmed[self._tag] = _fan_out([p.on_confirm for p in group])
        channel.basic_publish(item.exchange, item.bundle, body, pika.BasicProperties(
            delivery_mode=2, content_type=bundle.CONTENT_TYPE, headers=headers))

    def _take_bundle(self, first: _Pending) -> list[_Pending]:
        """The first message plus the queued ones of its exchange and bundle key that no earlier message of
        their order key is left behind by."""
        group, size, others = [first], len(first.body), []
        passed: set[str] = set()  # order keys of messages left in the queue
        queue = self._queue
        while queue and len(group) < bundle.MAX_PARTS:
            item = queue.popleft()
            fits = size + len(item.body) < bundle.MAX_BYTES
            if (item.bundle == first.bundle and item.exchange == first.exchange and fits
                    and item.order not in passed):
                group.append(item)
                size += len(item.body) + 1
            else:
                others.append(item)
                passed.add(item.order)
        queue.extendleft(reversed(others))  # the rest go next, in their order
        return group

    def _on_delivery(self, frame) -> None:
        method = frame.method
        ok = isinstance(method, Basic.Ack)
        tag = method.delivery_tag
        if method.multiple:
            while self._unconfirmed:
                first = next(iter(self._unconfirmed))
                if first > tag:
                    break
                self._settle(self._unconfirmed.pop(first), ok)
        else:
            callback = self._unconfirmed.pop(tag, None)
            if callback is not None:
                self._settle(callback, ok)
        if self._queue:
            self._drain()

    def _close(self) -> None:
        if self._conn is not None and self._conn.is_open:
            self._conn.close()
        elif self._conn is not None:
            self._conn.ioloop.stop()

    def _fail_all(self) -> None:
        while self._unconfirmed:
            _, callback = self._unconfirmed.popitem(last=False)
            self._settle(callback, False)
        while self._queue:
            self._settle(self._queue.popleft().on_confirm, False)

    def _set_ready(self, ready: bool) -> None:
        was = self._ready.is_set()
        (self._ready.set if ready else self._ready.clear)()
        if was != ready and self._on_state is not None:
            self._on_state(ready)

    @staticmethod
    def _settle(callback: Confirm, ok: bool) -> None:
        try:
            callback(ok)
        except Exception:  # a caller's bug must not kill the I/O thread that serves everyone
            log.exception("confirm callback failed")


def _fan_out(callbacks: list[Confirm]) -> Confirm:
    """One confirm settling every message of a bundle, in order."""

    def settle(ok: bool) -> None:
        for callback in callbacks:
            ConfirmPublisher._settle(callback, ok)

    return settle
