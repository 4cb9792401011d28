"""Every operations endpoint (rules, events, subscriptions, notifications, telemetry, archive, dead letters, stats)
for every role: allowed roles pass the check, others get 401/403 naming the required role."""

from __future__ import annotations

import uuid

import pytest

from tests.device_manager.conftest import ROLES, assert_error

RANK = {"viewer": 0, "operator": 1, "admin": 2}
NOPE = str(uuid.UUID(int=0x0450))  # an id that exists nowhere, so allowed writes change nothing
KEY = "dev-x/telemetry/2026/03/01/000000.ndjson"

# (method, path, minimum role, JSON body or None, status an allowed role gets)
MATRIX = [
    ("GET", "/api/v1/rules", "viewer", None, 200),
    ("POST", "/api/v1/rules", "operator", {}, 422),
    ("GET", f"/api/v1/rules/{NOPE}", "viewer", None, 404),
    ("PATCH", f"/api/v1/rules/{NOPE}", "operator", {}, 404),
    ("DELETE", f"/api/v1/rules/{NOPE}", "operator", None, 404),
    ("GET", "/api/v1/events", "viewer", None, 200),
    ("GET", f"/api/v1/events/{NOPE}", "viewer", None, 404),
    ("POST", f"/api/v1/events/{NOPE}/acknowledge", "operator", None, 404),
    ("POST", f"/api/v1/events/{NOPE}/resolve", "operator", {"comment": "c"}, 404),
    ("GET", "/api/v1/subscriptions", "viewer", None, 200),
    ("POST", "/api/v1/subscriptions", "operator", {}, 422),
    ("GET", f"/api/v1/subscriptions/{NOPE}", "viewer", None, 404),
    ("PATCH", f"/api/v1/subscriptions/{NOPE}", "operator", {}, 404),
    ("DELETE", f"/api/v1/subscriptions/{NOPE}", "operator", None, 404),
    ("GET", "/api/v1/notifications", "viewer", None, 200),
    ("GET", f"/api/v1/notifications/{NOPE}", "viewer", None, 404),
    ("GET", f"/api/v1/devices/{NOPE}/telemetry", "viewer", None, 404),
    ("GET", f"/api/v1/devices/{NOPE}/telemetry/latest", "viewer", None, 404),
    ("GET", f"/api/v1/devices/{NOPE}/archive", "viewer", None, 404),
    ("GET", f"/api/v1/devices/{NOPE}/archive/{KEY}", "viewer", None, 404),
    ("GET", f"/api/v1/devices/{NOPE}/raw", "viewer", None, 404),
    ("GET", "/api/v1/dead-letters", "admin", None, 200),
    ("GET", f"/api/v1/dead-letters/{NOPE}", "admin", None, 404),
    ("POST", f"/api/v1/dead-letters/{NOPE}/replay", "admin", None, 404),
    ("POST", f"/api/v1/dead-letters/{NOPE}/discard", "admin", None, 404),
    ("GET", "/api/v1/stats", "viewer", None, 200),
    ("GET", f"/api/v1/devices/{NOPE}/energy", "viewer", None, 404),
    ("GET", f"/api/v1/devices/{NOPE}/energy/register", "viewer", None, 404),
    ("GET", "/api/v1/energy", "viewer", None, 200),
    ("GET", "/api/v1/exports/telemetry", "viewer", None, 422),  # no device_id or device_type
    ("GET", "/api/v1/exports/energy", "viewer", None, 422),
]


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "anonymous"])
@pytest.mark.parametrize("case", MATRIX, ids=[f"{m} {p.replace(NOPE, '{id}')}" for m, p, *_ in MATRIX])
def test_ops_role_matrix(client, auth, role, case):
    method, path, minimum, body, allowed_status = case
    kwargs = {"headers": auth[role]}
    if body is not None:
        kwargs["json"] = body
    resp = client.open(path, method=method, **kwargs)
    if role is None:
        assert_error(resp, 401, "unauthorized")
    elif RANK[role] < RANK[minimum]:
        err = assert_error(resp, 403, "forbidden")
        assert err["details"]["required"] == minimum
    else:
        assert resp.status_code == allowed_status, resp.get_data(as_text=True)


def test_the_matrix_covers_every_operations_endpoint(app):
    """A new operations route must be added to MATRIX (and so get its role checked)."""
    prefixes = ("/api/v1/rules", "/api/v1/events", "/api/v1/subscriptions", "/api/v1/notifications",
                "/api/v1/dead-letters", "/api/v1/stats", "/api/v1/energy", "/api/v1/exports")
    suffixes = ("/telemetry", "/telemetry/latest", "/archive", "/archive/<path:key>", "/raw", "/energy",
                "/energy/register")
    routes = {(method, rule.rule) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}
              if rule.rule.startswith(prefixes) or rule.rule.endswith(suffixes)}
    listed = {(m, p.replace(NOPE, "ID").replace(KEY, "KEY")) for m, p, *_ in MATRIX}
    normalised = {(m, r.replace("<uuid:rule_id>", "ID").replace("<uuid:event_id>", "ID")
                   .replace("<uuid:sub_id>", "ID").replace("<uuid:notification_id>", "ID")
                   .replace("<uuid:device_id>", "ID").replace("<uuid:dl_id>", "ID").replace("<path:key>", "KEY"))
                  for m, r in routes}
    assert normalised == listed
