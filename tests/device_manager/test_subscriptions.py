"""Subscriptions API: CRUD, target validation per channel, write-only secret, roles, bad input."""

from __future__ import annotations

import uuid

import pytest

from tests.device_manager.conftest import assert_error
from tests.device_manager.ops_data import insert_rule

BASE = "/api/v1/subscriptions"
SECRET = "s3cret-signing-key-0123456789"


def webhook(uid: str, **over) -> dict:
    return {"name": f"ops hook {uid}", "channel": "webhook", "target": "https://hooks.example.test/iot",
            "secret": SECRET, "min_severity": "warning", **over}


@pytest.fixture
def sub(client, auth, uid):
    resp = client.post(BASE, json=webhook(uid), headers=auth["operator"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_crud_never_returns_the_secret(client, auth, users, db, uid):
    rule_id = str(insert_rule(db, f"sub-rule-{uid}"))
    resp = client.post(BASE, json=webhook(uid, rule_id=rule_id, device_type="power_meter_dc"),
                       headers=auth["operator"])
    assert resp.status_code == 201, resp.get_json()
    created = resp.get_json()
    assert "secret" not in created and created["has_secret"] is True
    assert (created["rule_id"], created["device_type"], created["created_by"]) == (
        rule_id, "power_meter_dc", users["operator"]["email"])
    with db.transaction() as cur:
        cur.execute("SELECT secret FROM subscriptions WHERE id = %s", (created["id"],))
        assert cur.fetchone()[0] == SECRET
    listed = client.get(f"{BASE}?rule_id={rule_id}", headers=auth["viewer"]).get_json()
    assert listed["items"] == [created] and SECRET not in str(listed)

    resp = client.patch(f"{BASE}/{created['id']}", json={"secret": None, "min_severity": "critical"},
                        headers=auth["operator"])
    assert (resp.get_json()["has_secret"], resp.get_json()["min_severity"]) == (False, "critical")
    resp = client.patch(f"{BASE}/{created['id']}", json={"channel": "email", "target": "oncall@example.com"},
                        headers=auth["operator"])
    assert resp.status_code == 200, resp.get_json()
    assert client.delete(f"{BASE}/{created['id']}", headers=auth["operator"]).status_code == 204
    assert_error(client.get(f"{BASE}/{created['id']}", headers=auth["viewer"]), 404, "not_found")
    assert_error(client.delete(f"{BASE}/{created['id']}", headers=auth["operator"]), 404)


def test_changing_channel_away_from_webhook_drops_the_secret(client, auth, sub):
    resp = client.patch(f"{BASE}/{sub['id']}", json={"channel": "log", "target": "ops"}, headers=auth["operator"])
    assert resp.status_code == 200 and resp.get_json()["has_secret"] is False


@pytest.mark.parametrize("body", [
    {"channel": "webhook", "target": "not a url"},
    {"channel": "webhook", "target": "ftp://files.example.test/x"},
    {"channel": "webhook", "target": "javascript:alert(1)"},
    {"channel": "email", "target": "https://example.com"},
    {"channel": "email", "target": "nobody@"},
    {"channel": "email", "target": "a@example.com", "secret": SECRET},   # only webhooks are signed
    {"channel": "sms", "target": "+3312345678"},
    {"channel": "webhook", "target": "https://x.test", "secret": "short"},
    {"channel": "webhook", "target": "https://x.test", "min_severity": "debug"},
    {"channel": "webhook", "target": "https://x.test", "rule_id": "nope"},
    {"channel": "webhook", "target": "https://x.test", "device_id": "a b"},
    {"channel": "webhook", "target": "https://x.test", "enabled": "yes please"},
    {"channel": "webhook", "target": "https://x.test", "colour": "red"},
    {"channel": "webhook"},
    {"target": "https://x.test"},
])
def test_invalid_bodies_are_422(client, auth, uid, body):
    assert_error(client.post(BASE, json={"name": f"n-{uid}", **body}, headers=auth["operator"]), 422,
                 "validation_error")


def test_unknown_rule_is_422_and_patch_checks_the_merged_target(client, auth, uid, sub):
    assert_error(client.post(BASE, json=webhook(uid, rule_id=str(uuid.uuid4())), headers=auth["operator"]), 422)
    err = assert_error(client.patch(f"{BASE}/{sub['id']}", json={"channel": "email"}, headers=auth["operator"]),
                       422, "validation_error")
    assert "target" in err["details"]["json"]
    assert_error(client.patch(f"{BASE}/{sub['id']}", json={"target": "mailto:x"}, headers=auth["operator"]), 422)
    assert client.get(f"{BASE}/{sub['id']}", headers=auth["viewer"]).get_json() == sub


def test_log_channel_accepts_a_label(client, auth, uid):
    resp = client.post(BASE, json={"name": f"log {uid}", "channel": "log", "target": "audit"},
                       headers=auth["operator"])
    assert resp.status_code == 201 and resp.get_json()["min_severity"] == "info"


def test_filters_and_pagination(client, auth, uid):
    for severity in ("info", "warning", "critical"):
        client.post(BASE, json=webhook(f"{uid}-{severity}", min_severity=severity, device_id=f"d-{uid}"),
                    headers=auth["operator"])
    page = client.get(f"{BASE}?device_id=d-{uid}&sort=-min_severity&page_size=2", headers=auth["viewer"]).get_json()
    assert [s["min_severity"] for s in page["items"]] == ["critical", "warning"] and page["total"] == 3
    assert client.get(f"{BASE}?q={uid}-info", headers=auth["viewer"]).get_json()["total"] == 1
    assert client.get(f"{BASE}?device_id=d-{uid}&channel=email", headers=auth["viewer"]).get_json()["total"] == 0
    for query in ("channel=sms", "page_size=0", "sort=secret", "rule_id=x", "enabled=2", "secret=x"):
        assert_error(client.get(f"{BASE}?{query}", headers=auth["viewer"]), 422, "validation_error")


@pytest.mark.parametrize("case", [("admin", 200, True), ("operator", 200, True), ("viewer", 200, False),
                                  (None, 401, False)])
def test_role_matrix(client, auth, uid, sub, case):
    role, read, write = case
    headers = auth[role]
    denied = 403 if role else 401
    assert client.get(BASE, headers=headers).status_code == read
    assert client.get(f"{BASE}/{sub['id']}", headers=headers).status_code == read
    assert client.post(BASE, json=webhook(uid + "r"), headers=headers).status_code == (201 if write else denied)
    assert client.patch(f"{BASE}/{sub['id']}", json={"enabled": False},
                        headers=headers).status_code == (200 if write else denied)
    resp = client.delete(f"{BASE}/{sub['id']}", headers=headers)
    assert resp.status_code == (204 if write else denied)
    if not write:
        assert_error(resp, denied)


def test_unknown_and_malformed_ids(client, auth):
    assert_error(client.get(f"{BASE}/{uuid.uuid4()}", headers=auth["viewer"]), 404)
    assert_error(client.patch(f"{BASE}/{uuid.uuid4()}", json={"enabled": True}, headers=auth["operator"]), 404)
    assert_error(client.get(f"{BASE}/zzz", headers=auth["viewer"]), 404)
