"""Transactional-outbox relay: publishes unpublished outbox rows in id order with confirms, then marks them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from iothub.db import Database
from iothub.errors import Unavailable
from iothub.rabbit import ConfirmPublisher

log = logging.getLogger(__name__)

_SELECT = """SELECT id, message_id::text, exchange, routing_key, payload::text FROM outbox
WHERE published_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"""


class OutboxRelay:
    """One thread; wake() after a commit for low latency, otherwise it polls every `interval` seconds."""

    def __init__(self, db: Database, publisher: ConfirmPublisher, *, batch: int = 500, interval: float = 1.0,
                 confirm_timeout: float = 10.0, on_published: Callable[[int, int], None] | None = None,
                 retention_s: float = 7 * 86400, purge_every_s: float = 300.0):
        self.db = db
        self.publisher = publisher
        self.batch = batch
        self.interval = interval
        self.confirm_timeout = confirm_timeout
        self.on_published = on_published  # (published, backlog) for metrics
        self.retention_s = retention_s
        self.purge_every_s = purge_every_s
        self._purged_at = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> OutboxRelay:
        """Run on a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """New rows were committed."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the current round and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)

    def run(self) -> None:
        """Publish until stop(); the last round after stop() flushes what was committed meanwhile."""
        backoff = self.interval
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self._wake.wait(backoff)
            self._wake.clear()
            try:
                while self.publish_pending()[1] and not self._stop.is_set():
                    pass
                if time.monotonic() - self._purged_at >= self.purge_every_s:
                    self._purged_at = time.monotonic()
                    self.purge()
                backoff = self.interval
            except Unavailable as exc:
                log.warning("outbox relay: database unavailable", extra={"error": str(exc)})
                backoff = min(backoff * 2, 15.0)
            except Exception:  # the relay must outlive any single bad round
                log.exception("outbox relay round failed")
                backoff = min(backoff * 2, 15.0)
            if stopping:
                return

    def publish_pending(self) -> tuple[int, bool]:
        """One round: returns (rows published, whether the batch was full so more may wait)."""
        with self.db.transaction() as cur:
            cur.execute(_SELECT, (self.batch,))
            rows = cur.fetchall()
            ok_ids = self._publish(rows) if rows else []
            if ok_ids:
                cur.execute("UPDATE outbox SET published_at = now() WHERE id = ANY(%s)", (ok_ids,))
            cur.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            backlog = cur.fetchone()[0]
        if self.on_published is not None:
            self.on_published(len(ok_ids), backlog)
        return len(ok_ids), len(rows) == self.batch and len(ok_ids) == len(rows)

    def purge(self) -> int:
        """Delete rows published longer ago than the retention (bounded per call); returns how many."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_at < now() - "
                        "make_interval(secs => %s) ORDER BY id LIMIT 10000)", (self.retention_s,))
            return cur.rowcount

    def _publish(self, rows: list[tuple]) -> list[int]:
        lock = threading.Lock()
        done = threading.Event()
        results: dict[int, bool] = {}

        def settle(row_id: int) -> Callable[[bool], None]:
            def on_confirm(ok: bool) -> None:
                with lock:
                    results[row_id] = ok
                    if len(results) == len(rows):
                        done.set()
            return on_confirm

        for row_id, message_id, exchange, routing_key, payload in rows:
            self.publisher.publish(exchange, routing_key, payload.encode(), settle(row_id), message_id=message_id)
        done.wait(self.confirm_timeout)
        with lock:
            ok = [row_id for row_id, good in results.items() if good]
        if len(ok) < len(rows):
            log.warning("outbox relay: some publishes not confirmed", extra={"unconfirmed": len(rows) - len(ok)})
        return ok
