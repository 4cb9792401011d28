"""PostgreSQL LISTEN on a dedicated connection: notifications to a callback, reconnecting while the database is down."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable

import psycopg2

log = logging.getLogger(__name__)


def listen(dsn: str, channel: str, on_notify: Callable[[str | None], None], stop: threading.Event, *,
           poll_s: float = 1.0, retry_s: float = 2.0) -> None:
    """Call on_notify(payload) per notification until `stop` is set; on_notify(None) after every (re)connect,
    since notifications sent while no connection listened are lost and the caller must resynchronise."""
    while not stop.is_set():
        conn = None
        try:
            conn = psycopg2.connect(dsn, connect_timeout=5, application_name=f"iothub-listen-{channel}")
            conn.autocommit = True  # LISTEN takes effect at commit; notifications arrive between transactions
            with conn.cursor() as cur:
                cur.execute(f'LISTEN "{channel}"')
            on_notify(None)
            while not stop.is_set():
                if select.select([conn], [], [], poll_s)[0]:
                    conn.poll()
                    while conn.notifies:
                        on_notify(conn.notifies.pop(0).payload)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            log.warning("database listen failed", extra={"channel": channel, "error": str(exc).strip()[:200]})
            stop.wait(retry_s)
        finally:
            if conn is not None:
                conn.close()
