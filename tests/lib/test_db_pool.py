"""The shared connection pool: transactions commit or roll back, single reads run without a transaction."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS

from iothub.db import Database


@pytest.fixture
def one_conn(pg_dsn):
    """A pool of a single connection, so every call reuses the connection the previous one returned."""
    database = Database(pg_dsn, maxconn=1, application_name="tests-pool")
    with database.transaction() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS pool_probe (v int)")  # temp: the one connection's own
    yield database
    database.close()


def test_a_read_opens_no_transaction_and_leaves_the_connection_transactional(one_conn):
    with one_conn.read() as cur:
        cur.execute("SELECT 1")
        assert cur.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
    with one_conn.transaction() as cur:
        cur.execute("INSERT INTO pool_probe VALUES (1)")
        assert cur.connection.get_transaction_status() == TRANSACTION_STATUS_INTRANS
        cur.execute("SELECT count(*) FROM pool_probe")
        assert cur.fetchone() == (1,)


def test_a_failed_read_or_transaction_does_not_poison_the_pooled_connection(one_conn):
    with pytest.raises(psycopg2.errors.UndefinedTable), one_conn.read() as cur:
        cur.execute("SELECT * FROM no_such_table")
    with pytest.raises(RuntimeError), one_conn.transaction() as cur:
        cur.execute("INSERT INTO pool_probe VALUES (2)")
        raise RuntimeError("abort")
    with one_conn.read() as cur:
        cur.execute("SELECT count(*) FROM pool_probe WHERE v = 2")
        assert cur.fetchone() == (0,)  # the aborted insert was rolled back, and the connection still answers
