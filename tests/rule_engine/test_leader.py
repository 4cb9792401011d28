"""Two replicas: one leads (advisory lock), the other stands by and takes over with the stored state."""

from __future__ import annotations

import time

import pytest

from iothub.errors import Unavailable
from rule_engine.app import RuleEngineApp
from tests.rule_engine.conftest import engine_settings, events_of, reload_rules
from tests.rule_engine.helpers import ingest
from tests.support.poll import wait_for


@pytest.fixture
def replicas(pg_dsn, amqp_url):
    """Leader A (started first) and standby B."""
    a = RuleEngineApp(engine_settings(pg_dsn, amqp_url)).start()
    wait_for(a.leading.is_set, what="A leads")
    wait_for(a.consumer.connected.is_set, what="A consuming")
    b = RuleEngineApp(engine_settings(pg_dsn, amqp_url)).start()
    yield a, b
    b.stop()
    a.stop()


def test_standby_takes_over_when_the_leader_loses_its_lock(replicas, feeder, rules, db, uid):
    a, b = replicas
    device = f"ha-{uid}"
    rules(name=f"ha {uid}", scope="device", device_id=device, metric="temperature", operator="gt", threshold=50)
    reload_rules(a, feeder)
    now = time.time()
    feeder.send(ingest(device, "t1", 0, now, [("temperature", 60, "Cel")]))
    wait_for(lambda: events_of(db, device), what="event opened by A")
    assert not b.leading.is_set() and b.ready() and b.leadership.pid is None  # a ready standby
    with db.transaction() as cur:  # A's lock connection dies (network loss, PostgreSQL restart...)
        cur.execute("SELECT pg_terminate_backend(%s)", (a.leadership.pid,))
    wait_for(lambda: a.lost.is_set() and not a.leading.is_set(), timeout=10, what="A notices the loss")
    with pytest.raises(Unavailable), a.service.store.transaction():  # fenced: A can no longer write
        pass
    wait_for(b.leading.is_set, timeout=15, what="B takes over")
    feeder.send(ingest(device, "t1", 1, now + 1, [("temperature", 61, "Cel")]))
    wait_for(lambda: events_of(db, device)[0]["count"] == 2, what="B counts on A's event")
    [event] = events_of(db, device)
    assert event["status"] == "open"
