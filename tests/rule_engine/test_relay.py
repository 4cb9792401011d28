"""The outbox relay against real PostgreSQL and RabbitMQ: publish in id order, mark after the confirm, retry later."""

from __future__ import annotations

import uuid

import orjson
import pytest

from iothub import topology
from iothub.rabbit import ConfirmPublisher
from rule_engine.relay import OutboxRelay
from tests.rule_engine.conftest import Tap


def _insert(db, key: str, n: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with db.transaction() as cur:
        for i, message_id in enumerate(ids):
            cur.execute("INSERT INTO outbox (message_id, exchange, routing_key, payload) VALUES (%s, %s, %s, %s)",
                        (message_id, topology.EVENTS_EXCHANGE, key, orjson.dumps({"change_id": message_id, "n": i})
                         .decode()))
    return ids


def _published(db, ids: list[str]) -> list[bool]:
    with db.transaction() as cur:
        cur.execute("SELECT published_at IS NOT NULL FROM outbox WHERE message_id = ANY(%s::uuid[]) ORDER BY id",
                    (ids,))
        return [row[0] for row in cur.fetchall()]


@pytest.fixture
def publisher(amqp_url):
    pub = ConfirmPublisher(amqp_url, name="test-relay").start()
    yield pub
    pub.stop()


def test_relay_publishes_in_order_with_message_ids_and_marks_rows(db, amqp_url, publisher, uid):
    key = f"info.threshold.relay-{uid}"
    tap = Tap(amqp_url, topology.EVENTS_EXCHANGE, key)
    try:
        ids = _insert(db, key, 25)
        relay = OutboxRelay(db, publisher, batch=10)
        while relay.publish_pending()[1]:  # full batches: keep going, as the relay thread does
            pass
        assert _published(db, ids) == [True] * 25
        received = [(props.message_id, orjson.loads(body)["n"]) for _, props, body in tap.drain()]
        assert received == [(message_id, n) for n, message_id in enumerate(ids)]
    finally:
        tap.close()


def test_relay_leaves_rows_unpublished_while_the_broker_is_unreachable(db, amqp_url, uid):
    down = ConfirmPublisher(amqp_url.rsplit("/", 1)[0] + "/no-such-vhost", name="test-relay-down")
    ids = _insert(db, f"info.threshold.down-{uid}", 3)
    relay = OutboxRelay(db, down, confirm_timeout=2)
    assert relay.publish_pending()[0] == 0  # never started: every publish settles False at once
    assert _published(db, ids) == [False] * 3
    up = ConfirmPublisher(amqp_url, name="test-relay-up").start()
    try:
        OutboxRelay(db, up).publish_pending()
        assert _published(db, ids) == [True] * 3  # a later round (or a restarted relay) republishes them
    finally:
        up.stop()


def test_purge_deletes_only_published_rows_past_the_retention(db, uid):
    old, fresh, pending = (_insert(db, f"info.threshold.purge-{uid}", 1) for _ in range(3))
    with db.transaction() as cur:
        cur.execute("UPDATE outbox SET published_at = now() - interval '2 hours' WHERE message_id = %s", (old[0],))
        cur.execute("UPDATE outbox SET published_at = now() WHERE message_id = %s", (fresh[0],))
    assert OutboxRelay(db, None, retention_s=3600).purge() >= 1
    with db.transaction() as cur:
        cur.execute("SELECT message_id::text FROM outbox WHERE message_id = ANY(%s::uuid[])",
                    ([old[0], fresh[0], pending[0]],))
        assert {row[0] for row in cur.fetchall()} == {fresh[0], pending[0]}
