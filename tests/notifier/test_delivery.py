"""The notifier against real RabbitMQ, PostgreSQL, an HTTP receiver and an SMTP server."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
from email import policy

import pika
import pytest
from prometheus_client import REGISTRY

from iothub import topology
from tests.notifier.support import attempts, change, make_rule, notifications, settled, subscribe
from tests.support.poll import wait_for
from tests.support.procs import free_port

pytestmark = pytest.mark.usefixtures("notifier")


def _valid_signature(secret: str, request) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("X-IoTHub-Signature", ""), expected)


def test_webhook_is_delivered_signed(db, receiver, publish, uid):
    path = f"/hook-{uid}"
    sub = subscribe(db, "webhook", receiver.url(path), secret=f"s3cret-{uid}", device_id=f"dev-{uid}")
    doc = change(f"dev-{uid}", severity="critical")
    publish(doc)
    [request] = wait_for(lambda: receiver.at(path), what="webhook request")
    assert _valid_signature(f"s3cret-{uid}", request)
    assert not _valid_signature("wrong", request)
    assert json.loads(request.body) == doc
    assert request.headers["X-IoTHub-Event-Id"] == doc["event"]["id"]
    [row] = wait_for(lambda: settled(db, sub), what="notification settled")
    assert request.headers["X-IoTHub-Delivery"] == row["id"]
    assert (row["status"], row["attempts"], row["change_id"]) == ("sent", 1, doc["change_id"])
    [attempt] = attempts(db, row["id"])
    assert (attempt["attempt"], attempt["status"], attempt["response_code"]) == (1, "sent", 200)
    assert attempt["finished_at"] >= attempt["started_at"]


def test_webhook_500_then_200_is_retried_and_recorded_per_attempt(db, receiver, publish, uid):
    path = f"/flaky-{uid}"
    receiver.script[path] = [500]
    sub = subscribe(db, "webhook", receiver.url(path), secret="k", device_id=f"dev-{uid}")
    publish(change(f"dev-{uid}"))
    [row] = wait_for(lambda: settled(db, sub), what="notification settled")
    assert (row["status"], row["attempts"]) == ("sent", 2)
    got = [(a["attempt"], a["status"], a["response_code"]) for a in attempts(db, row["id"])]
    assert got == [(1, "failed", 500), (2, "sent", 200)]
    first, second = receiver.at(path)
    assert first.body == second.body and _valid_signature("k", second)
    assert second.headers["X-IoTHub-Attempt"] == "2"


@pytest.fixture
def black_hole():
    """A listening socket that never accepts: connections complete in the kernel and never get an answer."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _dead_attempts(db, subscription_ids: list[str]) -> list[dict]:
    return [a for sid in subscription_ids for row in notifications(db, sid) for a in attempts(db, row["id"])]


def _all_settled(db, subscription_ids: list[str], each: int) -> list[dict] | None:
    rows = [settled(db, sid, each) for sid in subscription_ids]
    return None if None in rows else [row for group in rows for row in group]


def _max_overlap(intervals) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_dead_webhook_fails_after_max_attempts_without_blocking_others(db, receiver, publish, uid, black_hole):
    # Two subscriptions on the same dead host (different paths) share its limit: 6 notifications > 4 workers.
    dead = [subscribe(db, "webhook", f"{black_hole}/{n}", device_id=f"dead-{uid}") for n in ("a", "b")]
    healthy_path = f"/healthy-{uid}"
    healthy = subscribe(db, "webhook", receiver.url(healthy_path), device_id=f"ok-{uid}")
    for _ in range(3):
        publish(change(f"dead-{uid}"))
    wait_for(lambda: len(_dead_attempts(db, dead)) >= 2, what="dead target attempts running")
    for _ in range(2):
        publish(change(f"ok-{uid}"))
    healthy_rows = wait_for(lambda: settled(db, healthy, 2), timeout=10, what="healthy target served")
    assert all(r["status"] == "sent" for r in healthy_rows) and len(receiver.at(healthy_path)) == 2
    dead_rows = wait_for(lambda: _all_settled(db, dead, 3), timeout=30, what="dead target given up")
    assert all(r["status"] == "failed" and r["attempts"] == 3 for r in dead_rows)
    dead_attempts = _dead_attempts(db, dead)
    assert len(dead_attempts) == 18
    assert all(a["status"] == "failed" and "timeout" in a["error"].lower() for a in dead_attempts)
    # Per-target limit: never more than 2 attempts in flight to the dead target, so workers stayed free and the
    # healthy notifications went out before the first attempt to the dead target had even timed out.
    assert _max_overlap([(a["started_at"], a["finished_at"]) for a in dead_attempts]) <= 2
    # Not blocked: the healthy deliveries did not wait for the dead target to run out of attempts.
    assert max(r["sent_at"] for r in healthy_rows) < max(a["finished_at"] for a in dead_attempts)


def test_email_is_delivered_to_the_smtp_server(db, smtp_server, publish, uid):
    address = f"ops-{uid}@example.test"
    sub = subscribe(db, "email", address, device_id=f"dev-{uid}")
    doc = change(f"dev-{uid}", severity="critical", rule_name=f"Overvoltage {uid}")
    publish(doc)
    [row] = wait_for(lambda: settled(db, sub), what="email settled")
    assert row["status"] == "sent"
    [(sender, rcpts, raw)] = [m for m in smtp_server.handler.messages if address in m[1]]
    message = email.message_from_bytes(raw, policy=policy.default)
    assert (sender, rcpts) == ("alerts@iothub.test", [address])
    assert message["Subject"] == f"[IoT Hub] CRITICAL opened: Overvoltage {uid} on dev-{uid}"
    body = message.get_content()
    assert doc["event"]["message"] in body and doc["event"]["id"] in body
    assert attempts(db, row["id"])[0]["response_code"] == 250


def test_email_rejected_by_the_server_fails_without_retrying(db, publish, uid):
    sub = subscribe(db, "email", f"nobody-{uid}@example.test", device_id=f"dev-{uid}")
    publish(change(f"dev-{uid}"))
    [row] = wait_for(lambda: settled(db, sub), what="email settled")
    assert (row["status"], row["attempts"]) == ("failed", 1)
    [attempt] = attempts(db, row["id"])
    assert attempt["response_code"] == 550 and "No such user" in attempt["error"]


def test_email_header_injection_is_refused_without_retrying(db, smtp_server, publish, uid):
    sub = subscribe(db, "email", f"ops-{uid}@example.test\nBcc: thief@example.test", device_id=f"dev-{uid}")
    publish(change(f"dev-{uid}"))
    [row] = wait_for(lambda: settled(db, sub), what="email settled")
    assert (row["status"], row["attempts"]) == ("failed", 1) and "invalid message" in row["last_error"]
    assert not [m for m in smtp_server.handler.messages if "thief@example.test" in m[1]]


def test_min_severity_and_filters_decide_who_is_notified(db, publish, uid):
    device, other, dtype = f"dev-{uid}", f"other-{uid}", f"type-{uid}"
    rule = make_rule(db, f"rule-{uid}")
    subs = {
        "critical_only": subscribe(db, "log", "ops", min_severity="critical", device_type=dtype),
        "by_type": subscribe(db, "log", "ops", device_type=dtype),
        "by_device": subscribe(db, "log", "ops", device_id=device, device_type=dtype),
        "by_rule": subscribe(db, "log", "ops", device_type=dtype, rule_id=rule),
        "disabled": subscribe(db, "log", "ops", device_type=dtype, enabled=False),
    }
    warning = change(device, severity="warning", device_type=dtype)
    critical = change(other, severity="critical", device_type=dtype, rule_id=rule)
    info_other_type = change(device, severity="info", device_type=f"else-{uid}")
    for doc in (info_other_type, warning, critical):  # in order: once critical is planned, all were
        publish(doc)
    expected = {
        "critical_only": {critical["change_id"]},
        "by_type": {warning["change_id"], critical["change_id"]},
        "by_device": {warning["change_id"]},
        "by_rule": {critical["change_id"]},
        "disabled": set(),
    }
    wait_for(lambda: all(settled(db, subs[name], len(ids)) is not None for name, ids in expected.items()),
             what="matching notifications settled")
    got = {name: {r["change_id"] for r in notifications(db, sid)} for name, sid in subs.items()}
    assert got == expected
    assert all(r["status"] == "sent" for sid in subs.values() for r in notifications(db, sid))


def _counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_redelivered_change_notifies_once(db, receiver, publish, uid):
    path = f"/once-{uid}"
    sub = subscribe(db, "webhook", receiver.url(path), device_id=f"dev-{uid}")
    doc = change(f"dev-{uid}")
    duplicates_before = _counter("iothub_notifier_changes_total", outcome="duplicate")
    publish(doc)
    wait_for(lambda: settled(db, sub), what="first delivery")
    publish(doc)  # same message_id and change_id, e.g. the outbox relay republishing after a crash
    wait_for(lambda: _counter("iothub_notifier_changes_total", outcome="duplicate") > duplicates_before,
             what="duplicate consumed")
    [row] = notifications(db, sub)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert len(receiver.at(path)) == 1


def test_undecodable_change_is_dead_lettered_with_reason(amqp_url, publish, uid):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        tap = channel.queue_declare("", exclusive=True).method.queue  # our own copy of the dead-letter fanout
        channel.queue_bind(tap, topology.DEAD_LETTER_EXCHANGE)
        publish(None, body=b"{not json " + uid.encode(), message_id=f"poison-{uid}")

        def parked():
            method, props, body = channel.basic_get(tap, auto_ack=True)
            return (props, body) if method and props.message_id == f"poison-{uid}" else None

        props, body = wait_for(parked, what="dead letter")
        assert body == b"{not json " + uid.encode()
        assert props.headers[topology.DL_REASON] == "invalid_json"
        assert props.headers[topology.DL_SOURCE] == topology.NOTIFIER_QUEUE.name
    finally:
        conn.close()


def test_refused_connection_is_retried_then_failed(db, publish, uid):
    sub = subscribe(db, "webhook", f"http://127.0.0.1:{free_port()}/closed", device_id=f"dev-{uid}")
    publish(change(f"dev-{uid}"))
    [row] = wait_for(lambda: settled(db, sub), what="settled")
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert all("ConnectionError" in (a["error"] or "") for a in attempts(db, row["id"]))


def test_client_error_is_final_after_one_attempt(db, receiver, publish, uid):
    path = f"/gone-{uid}"
    receiver.script[path] = [410]
    sub = subscribe(db, "webhook", receiver.url(path), device_id=f"dev-{uid}")
    publish(change(f"dev-{uid}"))
    [row] = wait_for(lambda: settled(db, sub), what="settled")
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, "HTTP 410")
