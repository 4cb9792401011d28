"""Notifications API (read-only): filters, one notification with its attempts, roles, bad input."""

from __future__ import annotations

import uuid

import pytest

from tests.device_manager.conftest import assert_error
from tests.device_manager.ops_data import insert_event, insert_notification

BASE = "/api/v1/notifications"


@pytest.fixture
def sent(db, uid):
    """An event with a failed webhook notification (3 attempts) and a sent email one (1 attempt)."""
    event_id = insert_event(db, f"nt-{uid}")
    failed = insert_notification(db, event_id, channel="webhook", status="failed", attempts=3)
    ok = insert_notification(db, event_id, channel="email", status="sent", attempts=1)
    return str(event_id), str(failed), str(ok)


def test_list_filters(client, auth, sent):
    event_id, failed, ok = sent
    page = client.get(f"{BASE}?event_id={event_id}&sort=created_at", headers=auth["viewer"]).get_json()
    assert [n["id"] for n in page["items"]] == [failed, ok] and page["total"] == 2
    assert [n["id"] for n in client.get(f"{BASE}?event_id={event_id}&status=failed",
                                        headers=auth["viewer"]).get_json()["items"]] == [failed]
    assert [n["id"] for n in client.get(f"{BASE}?event_id={event_id}&channel=email",
                                        headers=auth["viewer"]).get_json()["items"]] == [ok]
    assert client.get(f"{BASE}?event_id={event_id}&channel=log", headers=auth["viewer"]).get_json()["total"] == 0
    item = page["items"][0]
    assert (item["attempts"], item["last_error"], item["channel"]) == (3, "HTTP 500", "webhook")
    assert "attempt_log" not in item


def test_read_one_with_its_attempts(client, auth, sent):
    _, failed, ok = sent
    detail = client.get(f"{BASE}/{failed}", headers=auth["viewer"]).get_json()
    assert [(a["attempt"], a["status"], a["response_code"]) for a in detail["attempt_log"]] == [
        (1, "failed", 500), (2, "failed", 500), (3, "failed", 500)]
    detail = client.get(f"{BASE}/{ok}", headers=auth["viewer"]).get_json()
    assert [(a["attempt"], a["status"], a["response_code"]) for a in detail["attempt_log"]] == [(1, "sent", 200)]
    assert detail["status"] == "sent" and detail["attempt_log"][0]["finished_at"].endswith("Z")


@pytest.mark.parametrize("query", ["event_id=1", "status=lost", "channel=sms", "sort=target", "page_size=500",
                                   "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since=soon", "x=1"])
def test_bad_filters_are_422(client, auth, query):
    assert_error(client.get(f"{BASE}?{query}", headers=auth["viewer"]), 422, "validation_error")


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("operator", 200), ("viewer", 200), (None, 401)])
def test_role_matrix(client, auth, sent, role, status):
    assert client.get(BASE, headers=auth[role]).status_code == status
    assert client.get(f"{BASE}/{sent[1]}", headers=auth[role]).status_code == status


def test_read_only_and_unknown_ids(client, auth, sent):
    assert_error(client.post(BASE, json={}, headers=auth["admin"]), 405)
    assert_error(client.delete(f"{BASE}/{sent[1]}", headers=auth["admin"]), 405)
    assert_error(client.get(f"{BASE}/{uuid.uuid4()}", headers=auth["viewer"]), 404, "not_found")
    assert_error(client.get(f"{BASE}/nope", headers=auth["viewer"]), 404)
