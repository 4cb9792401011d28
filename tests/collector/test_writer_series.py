"""Series writer on PostgreSQL: rows exactly once, daily partitions on demand, retention, dead-lettering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from collector.writers import start_writer
from collector.writers.series import partition_name
from collector.writers.series_postgres import PostgresSeriesStore
from iothub import topology
from iothub.db import Database
from tests.device_manager.ops_data import insert_datagrams
from tests.support.poll import wait_for

SERIES = topology.SERIES_QUEUE.name


def _body(ts, *values):
    return {"measurements": [{"ts": ts.isoformat(), "type": f"m{i}", "val": v, "unit": "V"}
                             for i, v in enumerate(values)]}


def _rows(db, device_id):
    with db.transaction() as cur:
        cur.execute("SELECT seq, ts, measurements, tableoid::regclass::text FROM telemetry WHERE device_id = %s "
                    "ORDER BY seq", (device_id,))
        return cur.fetchall()


def _store_errors():
    return REGISTRY.get_sample_value("iothub_collector_writer_store_errors_total",
                                     {"writer": "series", "store": "postgres"}) or 0.0


def _partitions(db):
    return set(PostgresSeriesStore(db).partitions())


def test_rows_stored_once_in_daily_partitions(writer_kit):
    kit, db, uid = writer_kit, writer_kit.db, writer_kit.uid
    kit.purge(SERIES)
    device = f"ser-{uid}"
    now = datetime.now(UTC).replace(microsecond=0)
    yesterday = now - timedelta(days=1)
    first = kit.message(device, "telemetry", _body(yesterday, 1.5), ts=yesterday, seq=1)
    second = kit.message(device, "telemetry", _body(now, 2.5, 3.5), ts=now, seq=2)
    kit.send(first, second, first, second)  # a re-publish after a crash carries the same msg_id
    kit.start("series", kit.settings(WRITERS="series", SERIES_BACKENDS="postgres"))

    wait_for(lambda: len(_rows(db, device)) == 2, timeout=20, what="two series rows")
    kit.send(first)  # redelivered after the rows exist: still no duplicate
    sentinel = kit.message(device, "telemetry", _body(now, 9.0), ts=now + timedelta(seconds=1), seq=3)
    kit.send(sentinel)
    rows = wait_for(lambda: (r := _rows(db, device)) and len(r) >= 3 and r, timeout=20, what="sentinel row")

    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[1][2] == second.body["measurements"]
    assert {r[3] for r in rows} == {partition_name(yesterday.date()), partition_name(now.date())}
    assert {partition_name(yesterday.date()), partition_name(now.date())} <= _partitions(db)
    # The one-minute rollup counted each datagram once, redeliveries included.
    rollup = _rollup(db, device)
    assert sum(n for _, n, _ in rollup.values()) == 4
    assert rollup[(yesterday.replace(second=0), "m0")] == ("V", 1, 1.5)
    assert rollup[(now.replace(second=0), "m0")] == ("V", 2, 11.5)
    assert rollup[(now.replace(second=0), "m1")] == ("V", 1, 3.5)


def _rollup(db, device_id):
    with db.transaction() as cur:
        cur.execute("SELECT bucket, metric, unit, n, sum FROM telemetry_1m WHERE device_id = %s", (device_id,))
        return {(bucket, metric): (unit, n, total) for bucket, metric, unit, n, total in cur.fetchall()}


def test_retention_drops_old_partitions_at_start_and_skips_expired_rows(writer_kit):
    kit, db, uid = writer_kit, writer_kit.db, writer_kit.uid
    kit.purge(SERIES)
    device = f"ret-{uid}"
    now = datetime.now(UTC)
    old_day = (now - timedelta(days=45)).date()
    kept_day = (now - timedelta(days=5)).date()
    PostgresSeriesStore(db).ensure_partitions({old_day, kept_day})
    assert {partition_name(old_day), partition_name(kept_day)} <= _partitions(db)
    old_ts = datetime(old_day.year, old_day.month, old_day.day, 12, tzinfo=UTC)
    kept_ts = datetime(kept_day.year, kept_day.month, kept_day.day, 12, tzinfo=UTC)
    insert_datagrams(db, [{"device_id": device, "ts": ts, "measurements": [(ts, "m0", 1.0, "V")]}
                          for ts in (old_ts, kept_ts)])
    assert set(_rollup(db, device)) == {(old_ts, "m0"), (kept_ts, "m0")}

    kit.start("series", kit.settings(WRITERS="series", SERIES_RETENTION_DAYS=30))
    wait_for(lambda: partition_name(old_day) not in _partitions(db), timeout=20, what="old partition dropped")
    assert partition_name(kept_day) in _partitions(db)
    wait_for(lambda: set(_rollup(db, device)) == {(kept_ts, "m0")}, timeout=20, what="old rollup rows deleted")

    too_old = now - timedelta(days=40)
    kit.send(kit.message(device, "telemetry", _body(too_old, 1.0), ts=too_old, seq=1),
                    kit.message(device, "telemetry", _body(now, 2.0), ts=now, seq=2))
    rows = wait_for(lambda: [r for r in _rows(db, device) if r[1] > kept_ts], timeout=20, what="fresh row stored")
    assert [r[0] for r in rows] == [2]  # the expired datagram was acked without recreating its partition
    assert partition_name(too_old.date()) not in _partitions(db)
    assert kit.ready_count(SERIES) == 0


@pytest.mark.fault
def test_postgres_outage_keeps_messages_queued_until_recovery(writer_kit, pg_dsn):
    tcpproxy = pytest.importorskip("tests.support.tcpproxy", reason="needs tests/support/tcpproxy.py")
    kit = writer_kit
    kit.purge(SERIES)
    device = f"pgo-{kit.uid}"
    now = datetime.now(UTC)
    proxy = tcpproxy.TcpProxy(5432)
    proxied = Database(pg_dsn.replace(":5432/", f":{proxy.port}/"), maxconn=2, application_name="writer-outage")
    handle = start_writer("series", kit.settings(WRITERS="series"), proxied)
    try:
        wait_for(handle.ready, timeout=15, what="writer connected")
        kit.send(kit.message(device, "telemetry", _body(now, 1.0), ts=now, seq=0))
        wait_for(lambda: _rows(kit.db, device), timeout=20, what="first row through the proxy")

        errors = _store_errors()
        proxy.block()  # drops the pooled connection mid-life and refuses new ones
        kit.send(*(kit.message(device, "telemetry", _body(now, float(i)), ts=now + timedelta(milliseconds=i), seq=i)
                   for i in range(1, 31)))
        wait_for(lambda: _store_errors() > errors, timeout=30, what="writer hitting the outage")
        assert len(_rows(kit.db, device)) == 1
        proxy.unblock()
        rows = wait_for(lambda: len(r := _rows(kit.db, device)) == 31 and r, timeout=60, what="all rows after recovery")
        assert [r[0] for r in rows] == list(range(31))
        wait_for(lambda: kit.ready_count(SERIES) == 0, timeout=10, what="queue drained")
    finally:
        proxy.close()
        handle.stop()
        handle.join(15)
        proxied.close()
