"""Rules API: CRUD on threshold rules, tunable built-ins, role matrix, validation, rule-change notices."""

from __future__ import annotations

import json
import math
import uuid

import pika
import pytest

from iothub import topology
from tests.device_manager.conftest import assert_error
from tests.support.poll import wait_for

BASE = "/api/v1/rules"


def rule_body(uid: str, **over) -> dict:
    return {"name": f"Temp high {uid}", "metric": "temperature", "operator": "gt", "threshold": 80.5,
            "severity": "critical", **over}


@pytest.fixture
def notices(amqp_url):
    """Messages arriving on iot.rules, read from a private queue: returns a function giving those seen so far."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    channel.exchange_declare(topology.RULES_EXCHANGE, exchange_type="fanout", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, topology.RULES_EXCHANGE)
    seen: list[dict] = []

    def read() -> list[dict]:
        while True:
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return seen
            seen.append(json.loads(body))

    yield read
    conn.close()


@pytest.fixture
def rule(client, auth, uid):
    resp = client.post(BASE, json=rule_body(uid), headers=auth["operator"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def builtin(client, auth, kind: str) -> dict:
    items = client.get(f"{BASE}?kind={kind}", headers=auth["viewer"]).get_json()["items"]
    assert len(items) == 1
    return items[0]


def test_create_read_update_delete_publishes_a_notice_each_time(client, auth, users, uid, notices):
    resp = client.post(BASE, json=rule_body(uid, scope="device", device_id=f"dev-{uid}", for_seconds=30),
                       headers=auth["operator"])
    assert resp.status_code == 201, resp.get_json()
    rule = resp.get_json()
    assert rule["kind"] == "threshold" and rule["builtin"] is False and rule["enabled"] is True
    assert (rule["scope"], rule["device_id"], rule["device_type"]) == ("device", f"dev-{uid}", None)
    assert rule["created_by"] == users["operator"]["email"] and rule["created_at"].endswith("Z")
    assert client.get(f"{BASE}/{rule['id']}", headers=auth["viewer"]).get_json() == rule

    resp = client.patch(f"{BASE}/{rule['id']}", json={"threshold": 90, "scope": "device_type",
                                                      "device_type": "power_meter_dc"}, headers=auth["operator"])
    assert resp.status_code == 200, resp.get_json()
    changed = resp.get_json()
    assert (changed["threshold"], changed["scope"], changed["device_id"], changed["device_type"]) == (
        90.0, "device_type", None, "power_meter_dc")

    assert client.delete(f"{BASE}/{rule['id']}", headers=auth["operator"]).status_code == 204
    assert_error(client.get(f"{BASE}/{rule['id']}", headers=auth["viewer"]), 404, "not_found")
    mine = lambda: [n for n in notices() if n["rule_id"] == rule["id"]]  # noqa: E731
    wait_for(lambda: len(mine()) == 3, timeout=10, what="three rule notices")
    assert [n["change"] for n in mine()] == ["created", "updated", "deleted"]


def test_builtin_kinds_are_listed_tunable_and_not_deletable(client, auth, notices):
    resp = client.get(f"{BASE}?builtin=true&sort=kind&page_size=10", headers=auth["viewer"])
    assert resp.status_code == 200
    assert [r["kind"] for r in resp.get_json()["items"]] == ["command_timeout", "offline", "ota_failed", "redundancy",
                                                                 "seq_gap"]
    offline = builtin(client, auth, "offline")
    resp = client.patch(f"{BASE}/{offline['id']}", json={"params": {"factor": 3}, "severity": "warning",
                                                         "enabled": False}, headers=auth["operator"])
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["params"], resp.get_json()["severity"], resp.get_json()["enabled"]) == (
        {"factor": 3}, "warning", False)
    wait_for(lambda: any(n == {"rule_id": offline["id"], "change": "updated"} for n in notices()), timeout=10,
             what="notice for the built-in rule")
    err = assert_error(client.patch(f"{BASE}/{offline['id']}", json={"metric": "x", "threshold": 1},
                                    headers=auth["operator"]), 422, "validation_error")
    assert set(err["details"]["json"]) == {"metric", "threshold"}
    for params in ({"factor": "two"}, {"factor": 0.5}, {"factor": True}, {"factor": 2, "grace": 1}):
        assert_error(client.patch(f"{BASE}/{offline['id']}", json={"params": params}, headers=auth["operator"]),
                     422, "validation_error")
    assert_error(client.delete(f"{BASE}/{offline['id']}", headers=auth["admin"]), 409, "conflict")
    client.patch(f"{BASE}/{offline['id']}", json={"params": {"factor": 2}, "severity": "critical",
                                                  "enabled": True}, headers=auth["operator"])


@pytest.mark.parametrize("case", [("admin", 200, True), ("operator", 200, True), ("viewer", 200, False),
                                  (None, 401, False)])
def test_role_matrix(client, auth, uid, rule, case):
    role, read, write = case
    headers = auth[role]
    assert client.get(BASE, headers=headers).status_code == read
    assert client.get(f"{BASE}/{rule['id']}", headers=headers).status_code == read
    denied = 403 if role else 401
    resp = client.post(BASE, json=rule_body(uid + "x"), headers=headers)
    assert resp.status_code == (201 if write else denied)
    if not write:
        assert_error(resp, denied)
    assert client.patch(f"{BASE}/{rule['id']}", json={"enabled": False},
                        headers=headers).status_code == (200 if write else denied)
    assert client.delete(f"{BASE}/{rule['id']}", headers=headers).status_code == (204 if write else denied)


@pytest.mark.parametrize("body", [
    {"metric": "temperature", "operator": "gt", "threshold": 1},                       # no name
    {"name": "x", "operator": "gt", "threshold": 1},                                    # no metric
    {"name": "x", "metric": "t", "operator": "above", "threshold": 1},                  # bad operator
    {"name": "x", "metric": "t", "operator": "gt", "threshold": "high"},                # wrong type
    {"name": "x", "metric": "t", "operator": "gt", "threshold": 1, "severity": "fatal"},
    {"name": "x", "metric": "t", "operator": "gt", "threshold": 1, "colour": "red"},    # unknown field
    {"name": "x", "metric": "t", "operator": "gt", "threshold": 1, "kind": "offline"},  # kinds are not created
    {"name": "x", "metric": "t", "operator": "gt", "threshold": 1, "scope": "device"},  # device scope needs an id
    {"name": "x", "metric": "t", "operator": "gt", "threshold": 1, "device_id": "d1"},  # id without device scope
    {"name": "x", "metric": "t", "operator": "gt", "threshold": 1, "scope": "device", "device_id": "../etc"},
    {"name": "x", "metric": "t", "operator": "gt", "threshold": 1, "for_seconds": -1},
    {"name": "x", "metric": "t", "operator": "gt", "threshold": 1, "enabled": "maybe"},
    {"name": "", "metric": "t", "operator": "gt", "threshold": 1},
])
def test_invalid_bodies_are_422(client, auth, body):
    err = assert_error(client.post(BASE, json=body, headers=auth["operator"]), 422, "validation_error")
    assert err["details"]


def test_non_finite_threshold_and_bad_json_are_refused(client, auth):
    raw = '{"name": "x", "metric": "t", "operator": "gt", "threshold": NaN}'
    assert_error(client.post(BASE, data=raw, content_type="application/json", headers=auth["operator"]), 422)
    assert math.isnan(json.loads(raw)["threshold"])  # Python's json would have let it through
    assert_error(client.post(BASE, data="{", content_type="application/json", headers=auth["operator"]), 400)
    assert_error(client.post(BASE, data="name=x", content_type="application/x-www-form-urlencoded",
                             headers=auth["operator"]), 415)


def test_patch_checks_the_merged_scope(client, auth, rule):
    err = assert_error(client.patch(f"{BASE}/{rule['id']}", json={"scope": "device"}, headers=auth["operator"]),
                       422, "validation_error")
    assert "device_id" in err["details"]["json"]
    assert_error(client.patch(f"{BASE}/{rule['id']}", json={"threshold": None}, headers=auth["operator"]), 422)


def test_unknown_and_malformed_ids(client, auth):
    assert_error(client.get(f"{BASE}/{uuid.uuid4()}", headers=auth["viewer"]), 404, "not_found")
    assert_error(client.get(f"{BASE}/not-a-uuid", headers=auth["viewer"]), 404)
    assert_error(client.patch(f"{BASE}/{uuid.uuid4()}", json={"enabled": False}, headers=auth["operator"]), 404)
    assert_error(client.delete(f"{BASE}/{uuid.uuid4()}", headers=auth["operator"]), 404)


def test_list_filters_sort_and_pagination(client, auth, uid):
    for i, severity in enumerate(("info", "warning", "critical")):
        client.post(BASE, json=rule_body(f"{uid}-{i}", severity=severity, metric=f"m_{uid}"), headers=auth["operator"])
    page = client.get(f"{BASE}?metric=m_{uid}&sort=-severity&page_size=2", headers=auth["viewer"]).get_json()
    assert page["total"] == 3 and [r["severity"] for r in page["items"]] == ["critical", "warning"]
    assert page["links"]["next"] and page["links"]["prev"] is None
    second = client.get(page["links"]["next"], headers=auth["viewer"]).get_json()
    assert [r["severity"] for r in second["items"]] == ["info"] and second["links"]["next"] is None
    found = client.get(f"{BASE}?q=Temp%20high%20{uid}-1", headers=auth["viewer"]).get_json()
    assert [r["severity"] for r in found["items"]] == ["warning"]
    assert client.get(f"{BASE}?q=100%25_", headers=auth["viewer"]).get_json()["total"] == 0  # wildcards are literal
    for query in ("page=0", "page_size=0", "page_size=101", "sort=threshold", "severity=fatal", "enabled=perhaps",
                  "colour=red", "page=x"):
        assert_error(client.get(f"{BASE}?{query}", headers=auth["viewer"]), 422, "validation_error")
    beyond = client.get(f"{BASE}?metric=m_{uid}&page=50", headers=auth["viewer"]).get_json()
    assert beyond["items"] == [] and beyond["total"] == 3
