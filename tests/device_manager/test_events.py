"""Events API: filters, the open -> acknowledged -> resolved state machine, who/when, roles, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.device_manager.conftest import assert_error
from tests.device_manager.ops_data import insert_event, insert_rule

BASE = "/api/v1/events"
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return quote(ts.isoformat())


@pytest.fixture
def fleet(db, uid):
    """Four rules' events on one device: (open warning, open critical, acknowledged info, resolved critical)."""
    device = f"ev-{uid}"
    rules = [insert_rule(db, f"r{i}-{uid}") for i in range(4)]
    ids = [
        insert_event(db, device, rule_id=rules[0], severity="warning", last_ts=T0),
        insert_event(db, device, rule_id=rules[1], severity="critical", last_ts=T0 + timedelta(minutes=1)),
        insert_event(db, device, rule_id=rules[2], severity="info", status="acknowledged",
                     last_ts=T0 + timedelta(minutes=2)),
        insert_event(db, device, rule_id=rules[3], severity="critical", status="resolved",
                     last_ts=T0 + timedelta(minutes=3)),
    ]
    return device, rules, [str(i) for i in ids]


def listed(client, auth, query: str) -> list[str]:
    resp = client.get(f"{BASE}?{query}", headers=auth["viewer"])
    assert resp.status_code == 200, resp.get_json()
    return [e["id"] for e in resp.get_json()["items"]]


def test_filters_and_default_order(client, auth, fleet):
    device, rules, ids = fleet
    assert listed(client, auth, f"device_id={device}") == ids[::-1]  # newest last_ts first
    assert listed(client, auth, f"device_id={device}&status=open") == [ids[1], ids[0]]
    assert listed(client, auth, f"device_id={device}&status=open&status=acknowledged&sort=last_ts") == ids[:3]
    assert listed(client, auth, f"device_id={device}&severity=critical") == [ids[3], ids[1]]
    assert listed(client, auth, f"rule_id={rules[2]}") == [ids[2]]
    assert listed(client, auth, f"device_id={device}&since={iso(T0 + timedelta(minutes=1))}"
                                f"&until={iso(T0 + timedelta(minutes=3))}") == [ids[2], ids[1]]
    assert listed(client, auth, f"device_id={device}&sort=severity&page_size=1") == [ids[2]]
    assert listed(client, auth, f"device_id={device}&rule_kind=offline") == []
    far_east = quote("2026-06-02T04:03:00+15:59")  # 12:04 UTC: any valid offset is normalised to UTC
    assert listed(client, auth, f"device_id={device}&until={far_east}") == ids[::-1]
    page = client.get(f"{BASE}?device_id={device}&page_size=3&page=2", headers=auth["viewer"]).get_json()
    assert ([e["id"] for e in page["items"]], page["total"], page["links"]["next"]) == ([ids[0]], 4, None)
    event = client.get(f"{BASE}/{ids[0]}", headers=auth["viewer"]).get_json()
    assert event["trigger_values"] == {"temperature": 91.5} and event["last_ts"] == "2026-06-01T12:00:00Z"


@pytest.mark.parametrize("query", [
    "status=closed", "severity=fatal", "rule_id=not-a-uuid", "since=yesterday", "since=2026-06-01T12:00:00",
    "since=2026-06-02T00:00:00Z&until=2026-06-01T00:00:00Z", "since=2026-06-01T00:00:00Z&until=2026-06-01T00:00:00Z",
    "sort=message", "page_size=1000", "page=-1", "device_id=a/b", "bogus=1", "since=0001-01-01T00:30:00%2B01:00",
    "since=1969-12-31T23:59:59Z", "until=9999-12-31T23:59:59Z",
])
def test_bad_filters_are_422(client, auth, query):
    assert_error(client.get(f"{BASE}?{query}", headers=auth["viewer"]), 422, "validation_error")


def test_acknowledge_then_resolve_records_who_and_when(client, auth, users, fleet):
    _, _, ids = fleet
    before = datetime.now(UTC) - timedelta(seconds=5)
    resp = client.post(f"{BASE}/{ids[0]}/acknowledge", headers=auth["operator"])
    assert resp.status_code == 200, resp.get_json()
    acked = resp.get_json()
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", users["operator"]["email"])
    assert datetime.fromisoformat(acked["acknowledged_at"]) >= before and acked["resolved_at"] is None
    err = assert_error(client.post(f"{BASE}/{ids[0]}/acknowledge", headers=auth["operator"]), 409, "conflict")
    assert err["details"] == {"status": "acknowledged", "target": "acknowledged"}

    resp = client.post(f"{BASE}/{ids[0]}/resolve", json={"comment": "replaced the fan"}, headers=auth["admin"])
    assert resp.status_code == 200, resp.get_json()
    done = resp.get_json()
    assert (done["status"], done["resolved_by"], done["resolution_comment"]) == (
        "resolved", users["admin"]["email"], "replaced the fan")
    assert done["acknowledged_by"] == users["operator"]["email"] and done["resolved_at"] >= done["acknowledged_at"]
    assert client.get(f"{BASE}/{ids[0]}", headers=auth["viewer"]).get_json() == done
    assert_error(client.post(f"{BASE}/{ids[0]}/resolve", json={"comment": "again"}, headers=auth["operator"]), 409)
    assert_error(client.post(f"{BASE}/{ids[0]}/acknowledge", headers=auth["operator"]), 409)


def test_an_open_event_can_be_resolved_directly(client, auth, fleet):
    _, _, ids = fleet
    resp = client.post(f"{BASE}/{ids[1]}/resolve", json={"comment": "false alarm"}, headers=auth["operator"])
    assert resp.status_code == 200 and resp.get_json()["acknowledged_by"] is None
    assert_error(client.post(f"{BASE}/{ids[3]}/resolve", json={"comment": "x"}, headers=auth["operator"]), 409)


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": 5}, {"comment": "ok", "extra": 1},
                                  {"comment": "x" * 2001}])
def test_resolve_needs_a_comment(client, auth, fleet, body):
    _, _, ids = fleet
    assert_error(client.post(f"{BASE}/{ids[0]}/resolve", json=body, headers=auth["operator"]), 422,
                 "validation_error")
    assert client.get(f"{BASE}/{ids[0]}", headers=auth["viewer"]).get_json()["status"] == "open"


@pytest.mark.parametrize("case", [("admin", 200, 200), ("operator", 200, 200), ("viewer", 200, 403), (None, 401, 401)])
def test_role_matrix(client, auth, fleet, case):
    role, read, write = case
    _, _, ids = fleet
    assert client.get(BASE, headers=auth[role]).status_code == read
    assert client.get(f"{BASE}/{ids[0]}", headers=auth[role]).status_code == read
    assert client.post(f"{BASE}/{ids[0]}/acknowledge", headers=auth[role]).status_code == write
    resp = client.post(f"{BASE}/{ids[1]}/resolve", json={"comment": "c"}, headers=auth[role])
    assert resp.status_code == write
    if write != 200:
        assert_error(resp, write)


def test_unknown_and_malformed_ids(client, auth):
    missing = uuid.uuid4()
    assert_error(client.get(f"{BASE}/{missing}", headers=auth["viewer"]), 404, "not_found")
    assert_error(client.post(f"{BASE}/{missing}/acknowledge", headers=auth["operator"]), 404, "not_found")
    assert_error(client.post(f"{BASE}/{missing}/resolve", json={"comment": "c"}, headers=auth["operator"]), 404)
    assert_error(client.get(f"{BASE}/123", headers=auth["viewer"]), 404)
    assert_error(client.post(f"{BASE}/123/acknowledge", headers=auth["operator"]), 404)


def test_concurrent_acknowledgements_succeed_once(app, auth, fleet):
    from concurrent.futures import ThreadPoolExecutor

    _, _, ids = fleet

    def ack(role):
        return app.test_client().post(f"{BASE}/{ids[1]}/acknowledge", headers=auth[role]).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(ack, ["operator", "admin", "operator", "admin"]))
    assert statuses == [200, 409, 409, 409]

