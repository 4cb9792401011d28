"""A thread-safe psycopg2 pool whose transactions turn connection failures into Unavailable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extras
import psycopg2.pool

from iothub.errors import Unavailable

psycopg2.extras.register_uuid()
_CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class Database:
    """Pool of connections: `transaction()` yields a cursor and commits or rolls back; `read()` for a single read."""

    def __init__(self, dsn: str, *, minconn: int = 1, maxconn: int = 10, application_name: str = "iothub",
                 keep_idle: int | None = None):
        self.dsn = dsn
        self._keep_idle = keep_idle
        self._kwargs = {"application_name": application_name, "connect_timeout": 5}
        self._minconn, self._maxconn = minconn, maxconn
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        """Connections currently checked out (for the pool gauge)."""
        return self._in_use

    @property
    def size(self) -> int:
        """Largest number of connections the pool opens."""
        return self._maxconn

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        with self._lock:
            if self._pool is None:
                try:
                    pool = psycopg2.pool.ThreadedConnectionPool(
                        self._minconn, self._maxconn, self.dsn, **self._kwargs)
                    if self._keep_idle is not None:
                        # psycopg2 closes a returned connection once `minconn` are idle, so concurrent threads
                        # reconnect (a backend fork) on nearly every transaction; minconn is read only at
                        # construction and in putconn, so raising it now keeps up to keep_idle open, opened lazily.
                        pool.minconn = max(self._minconn, self._keep_idle)
                    self._pool = pool
                except _CONNECTION_ERRORS as exc:
                    raise Unavailable(f"database: {exc}".strip()) from exc
            return self._pool

    @contextmanager
    def transaction(self, *, dict_rows: bool = False) -> Iterator[psycopg2.extensions.cursor]:
        """One transaction on a pooled connection; a broken connection is discarded, not reused."""
        with self._connection() as conn:
            factory = psycopg2.extras.RealDictCursor if dict_rows else None
            with conn.cursor(cursor_factory=factory) as cur:
                yield cur
            conn.commit()

    @contextmanager
    def read(self, *, dict_rows: bool = False) -> Iterator[psycopg2.extensions.cursor]:
        """A cursor in autocommit for one read-only statement (several here see different snapshots)."""
        # No BEGIN and COMMIT: one round trip instead of three, each a wait for the GIL in a threaded server.
        with self._connection() as conn:
            conn.autocommit = True  # psycopg2 only flips a flag: no round trip
            try:
                factory = psycopg2.extras.RealDictCursor if dict_rows else None
                with conn.cursor(cursor_factory=factory) as cur:
                    yield cur
            finally:
                if not conn.closed:
                    conn.autocommit = False

    @contextmanager
    def _connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A pooled connection, rolled back on error; a broken one is discarded, not reused."""
        pool = self._get_pool()
        try:
            conn = pool.getconn()
        except psycopg2.pool.PoolError as exc:
            raise Unavailable(f"database pool: {exc}") from exc
        except _CONNECTION_ERRORS as exc:
            raise Unavailable(f"database: {exc}".strip()) from exc
        self._in_use += 1
        broken = False
        try:
            yield conn
        except _CONNECTION_ERRORS as exc:
            broken = True
            raise Unavailable(f"database: {exc}".strip()) from exc
        except BaseException:
            broken = conn.closed != 0
            if not broken:
                try:
                    conn.rollback()
                except _CONNECTION_ERRORS:
                    broken = True
            raise
        finally:
            self._in_use -= 1
            pool.putconn(conn, close=broken or conn.closed != 0)

    def ping(self) -> bool:
        """True when a trivial query succeeds."""
        try:
            with self.read() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() == (1,)
        except Unavailable:
            return False

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None
