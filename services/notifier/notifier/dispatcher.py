"""Delivery scheduler: claims due notifications from the store and runs their attempts on a worker pool."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from iothub.errors import Unavailable
from notifier.service import Claim, Service

log = logging.getLogger(__name__)


class Dispatcher:
    """Keeps up to `workers` attempts in flight, at most the service's per-target limit to any one target.

    Nothing is held in memory that is not also in PostgreSQL: a claim is a lease on the row, so after a
    crash the lease expires and another (or the restarted) notifier resumes the notification.
    """

    def __init__(self, service: Service, *, workers: int, poll_interval: float = 0.5,
                 gauge_interval: float = 2.0, on_pending: Callable[[int], None] | None = None):
        self._service = service
        self._workers = workers
        self._poll = poll_interval
        self._gauge_interval = gauge_interval
        self._on_pending = on_pending or (lambda _count: None)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver")
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.healthy = threading.Event()

    def wake(self) -> None:
        """Look for due work now (new notifications were stored or a worker finished)."""
        self._wake.set()

    def in_flight(self) -> int:
        """Attempts currently running."""
        with self._lock:
            return sum(self._busy.values())

    def stop(self) -> None:
        """Stop claiming; run() returns once the running attempts are recorded."""
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Claim and dispatch until stop(), then wait for the attempts in flight."""
        try:
            self._loop()
        finally:
            self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        backoff, next_gauge = self._poll, 0.0
        while not self._stop.is_set():
            try:
                started = self._dispatch()
                if time.monotonic() >= next_gauge:
                    self._on_pending(self._service.pending())
                    next_gauge = time.monotonic() + self._gauge_interval
                self.healthy.set()
                backoff = self._poll
            except Exception as exc:  # a scheduler that dies silently would strand every notification
                self.healthy.clear()
                if isinstance(exc, Unavailable):
                    log.warning("database unavailable, delivery paused", extra={"error": str(exc)})
                else:
                    log.exception("scheduler error, delivery paused")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if not started:  # nothing due (or no free worker): sleep until woken or the next poll
                self._wake.wait(self._poll)
                self._wake.clear()

    def _dispatch(self) -> bool:
        with self._lock:
            free = self._workers - sum(self._busy.values())
            busy = dict(self._busy)
        if free <= 0:
            return False
        claims = self._service.claim(free, busy)
        with self._lock:
            for claim in claims:
                self._busy[claim.target_key] += 1
        for claim in claims:
            self._pool.submit(self._attempt, claim)
        return len(claims) == free  # a full claim: more may be due right away

    def _attempt(self, claim: Claim) -> None:
        try:
            self._deliver(claim)
        finally:
            with self._lock:
                self._busy[claim.target_key] -= 1
                if self._busy[claim.target_key] <= 0:
                    del self._busy[claim.target_key]
            self._wake.set()

    def _deliver(self, claim: Claim) -> None:
        try:
            self._service.deliver(claim)
        except Exception:
            log.exception("delivery not recorded; the lease will retry it",
                          extra={"notification_id": claim.notification_id})
