"""Dead-letters API (admin only): previews, filters, replay to the original exchange, discard, edge rejects."""

from __future__ import annotations

import base64
import uuid

import pika
import pytest

from iothub import topology
from tests.device_manager.conftest import assert_error
from tests.device_manager.ops_data import insert_dead_letter
from tests.support.poll import wait_for
from tests.support.procs import free_port

BASE = "/api/v1/dead-letters"


@pytest.fixture
def parked(db, uid):
    """Three parked letters from one source: JSON text, binary, and a 3000-byte body."""
    source = f"collector.series.{uid}"
    return {
        "text": str(insert_dead_letter(db, body=b'{"temp": "\xc3\xa9t\xc3\xa9"}', source=source)),
        "binary": str(insert_dead_letter(db, body=b"\xff\x00\x01binary", source=source, reason="malformed_json")),
        "long": str(insert_dead_letter(db, body=b"a" * 3000, source=source, reason="too_large")),
        "source": source,
    }


@pytest.fixture
def telemetry_queue(amqp_url, uid):
    """A private queue on iot.telemetry for this test's routing key; returns (key, get_message)."""
    key = f"telemetry.power_meter_dc.dl-{uid}"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    topology.declare(channel)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, topology.TELEMETRY_EXCHANGE, key)

    def get():
        method, props, body = channel.basic_get(queue, auto_ack=True)
        return (props, body) if method else None

    yield key, get
    conn.close()


def test_list_previews_bodies_as_text_or_base64(client, auth, parked):
    page = client.get(f"{BASE}?source={parked['source']}&sort=received_at", headers=auth["admin"]).get_json()
    by_id = {d["id"]: d for d in page["items"]}
    assert page["total"] == 3
    text, binary, long = by_id[parked["text"]], by_id[parked["binary"]], by_id[parked["long"]]
    assert (text["body_encoding"], text["body_preview"], text["body_truncated"]) == ("text", '{"temp": "été"}', False)
    assert binary["body_encoding"] == "base64"
    assert base64.b64decode(binary["body_preview"]) == b"\xff\x00\x01binary"
    assert (long["body_size"], len(long["body_preview"]), long["body_truncated"]) == (3000, 1024, True)
    assert (text["status"], text["reason"], text["exchange"]) == ("parked", "malformed_json", "iot.telemetry")
    assert client.get(f"{BASE}/{parked['long']}", headers=auth["admin"]).get_json() == long
    reasons = client.get(f"{BASE}?source={parked['source']}&reason=too_large", headers=auth["admin"]).get_json()
    assert [d["id"] for d in reasons["items"]] == [parked["long"]]


def test_replay_republishes_to_the_original_exchange_and_key(client, auth, users, db, telemetry_queue):
    key, get = telemetry_queue
    body = b'{"msg_id": "m-1", "device_id": "d1"}'
    dl_id = insert_dead_letter(db, body=body, routing_key=key, headers={
        "x-custom": "kept", topology.DL_REASON: "handler_error", topology.DL_EXCHANGE: "iot.telemetry",
        topology.DL_ROUTING_KEY: key, topology.DL_SOURCE: "rule-engine.input"})
    resp = client.post(f"{BASE}/{dl_id}/replay", headers=auth["admin"])
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["status"], resp.get_json()["handled_by"]) == ("replayed", users["admin"]["email"])
    props, got = wait_for(get, timeout=10, what="the replayed message")
    assert got == body
    assert props.headers["x-custom"] == "kept" and props.headers["x-iothub-replayed-from"] == str(dl_id)
    assert topology.DL_REASON not in props.headers and props.delivery_mode == 2
    with db.transaction() as cur:
        cur.execute("SELECT message_id FROM dead_letters WHERE id = %s", (dl_id,))
        assert props.message_id == cur.fetchone()[0]
    err = assert_error(client.post(f"{BASE}/{dl_id}/replay", headers=auth["admin"]), 409, "conflict")
    assert err["details"]["status"] == "replayed"
    assert_error(client.post(f"{BASE}/{dl_id}/discard", headers=auth["admin"]), 409)
    assert get() is None  # replayed once only


def test_edge_rejects_cannot_be_replayed_but_can_be_discarded(client, auth, db):
    dl_id = insert_dead_letter(db, exchange=None, routing_key="iot/pm-1/telemetry", source="mqtt")
    err = assert_error(client.post(f"{BASE}/{dl_id}/replay", headers=auth["admin"]), 409, "conflict")
    assert "edge" in err["message"]
    assert client.get(f"{BASE}/{dl_id}", headers=auth["admin"]).get_json()["status"] == "parked"
    resp = client.post(f"{BASE}/{dl_id}/discard", headers=auth["admin"])
    assert resp.status_code == 200 and resp.get_json()["status"] == "discarded"
    assert_error(client.post(f"{BASE}/{dl_id}/discard", headers=auth["admin"]), 409)
    listed = client.get(f"{BASE}?status=discarded&source=mqtt", headers=auth["admin"]).get_json()
    assert str(dl_id) in [d["id"] for d in listed["items"]]


def test_replay_with_rabbitmq_down_is_503_and_stays_parked(make_app, auth, db):
    app = make_app(amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    dl_id = insert_dead_letter(db)
    try:
        assert_error(app.test_client().post(f"{BASE}/{dl_id}/replay", headers=auth["admin"]), 503, "unavailable")
    finally:
        app.extensions["device_manager"].amqp.close()
    with db.transaction() as cur:
        cur.execute("SELECT status, handled_by FROM dead_letters WHERE id = %s", (dl_id,))
        assert cur.fetchone() == ("parked", None)


@pytest.mark.parametrize("role", ["operator", "viewer", None])
def test_only_admins(client, auth, parked, role):
    status = 403 if role else 401
    dl = parked["text"]
    for method, url in (("get", BASE), ("get", f"{BASE}/{dl}"), ("post", f"{BASE}/{dl}/replay"),
                        ("post", f"{BASE}/{dl}/discard")):
        assert_error(getattr(client, method)(url, headers=auth[role]), status)
    assert client.get(f"{BASE}/{dl}", headers=auth["admin"]).get_json()["status"] == "parked"


@pytest.mark.parametrize("query", ["status=lost", "sort=body", "page_size=0", "since=now", "reason=",
                                   "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "body=x"])
def test_bad_filters_are_422(client, auth, query):
    assert_error(client.get(f"{BASE}?{query}", headers=auth["admin"]), 422, "validation_error")


def test_unknown_ids(client, auth):
    for method, suffix in (("get", ""), ("post", "/replay"), ("post", "/discard")):
        assert_error(getattr(client, method)(f"{BASE}/{uuid.uuid4()}{suffix}", headers=auth["admin"]), 404)
        assert_error(getattr(client, method)(f"{BASE}/xyz{suffix}", headers=auth["admin"]), 404)


def test_a_replayed_message_that_fails_again_is_parked_again(client, auth, db, telemetry_queue):
    """Contract with the collector's recorder: the same message_id dead-lettered after a replay is parked anew."""
    from collector.writers.dead_letters import DeadLetter
    from collector.writers.dead_letters_postgres import PostgresDeadLetterStore

    key, get = telemetry_queue
    dl_id = insert_dead_letter(db, routing_key=key)
    assert client.post(f"{BASE}/{dl_id}/replay", headers=auth["admin"]).status_code == 200
    wait_for(get, timeout=10, what="the replayed message")
    message_id = client.get(f"{BASE}/{dl_id}", headers=auth["admin"]).get_json()["message_id"]
    PostgresDeadLetterStore(db).insert([DeadLetter(message_id, "collector.series", "handler_error", "again",
                                                   "iot.telemetry", key, {}, b'{"x": 1}')])
    again = client.get(f"{BASE}/{dl_id}", headers=auth["admin"]).get_json()
    assert (again["status"], again["reason"], again["handled_by"]) == ("parked", "handler_error", None)
    assert client.post(f"{BASE}/{dl_id}/discard", headers=auth["admin"]).get_json()["status"] == "discarded"


def test_concurrent_replays_publish_once(app, auth, db, telemetry_queue):
    """Two admins replaying the same letter at once: one 200, one 409, one message on the broker."""
    from concurrent.futures import ThreadPoolExecutor

    key, get = telemetry_queue
    dl_id = insert_dead_letter(db, routing_key=key)

    def replay(_):
        return app.test_client().post(f"{BASE}/{dl_id}/replay", headers=auth["admin"]).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(replay, range(4)))
    assert statuses == [200, 409, 409, 409]
    wait_for(get, timeout=10, what="the replayed message")
    with db.transaction() as cur:
        cur.execute("SELECT status FROM dead_letters WHERE id = %s", (dl_id,))
        assert cur.fetchone()[0] == "replayed"
    assert get() is None

