"""Every endpoint of the core resources for every role: allowed roles pass the check, others get 401/403."""

from __future__ import annotations

import uuid

import pytest

from tests.device_manager.conftest import ROLES, assert_error

RANK = {"viewer": 0, "operator": 1, "admin": 2}
NOPE = str(uuid.UUID(int=0x1234))  # an id that exists nowhere, so allowed writes change nothing

# (method, path, minimum role, JSON body or None, status an allowed role gets)
MATRIX = [
    ("GET", "/api/v1/auth/me", "viewer", None, 200),
    ("GET", "/api/v1/users", "admin", None, 200),
    ("POST", "/api/v1/users", "admin", {}, 422),
    ("GET", f"/api/v1/users/{NOPE}", "admin", None, 404),
    ("PATCH", f"/api/v1/users/{NOPE}", "admin", {}, 404),
    ("DELETE", f"/api/v1/users/{NOPE}", "admin", None, 404),
    ("GET", "/api/v1/device-types", "viewer", None, 200),
    ("POST", "/api/v1/device-types", "admin", {}, 422),
    ("GET", f"/api/v1/device-types/{NOPE}", "viewer", None, 404),
    ("PATCH", f"/api/v1/device-types/{NOPE}", "admin", {}, 404),
    ("DELETE", f"/api/v1/device-types/{NOPE}", "admin", None, 404),
    ("GET", "/api/v1/devices", "viewer", None, 200),
    ("POST", "/api/v1/devices", "operator", {}, 422),
    ("POST", "/api/v1/devices/bulk", "operator", {}, 422),
    ("GET", f"/api/v1/devices/{NOPE}", "viewer", None, 404),
    ("PATCH", f"/api/v1/devices/{NOPE}", "operator", {}, 404),
    ("DELETE", f"/api/v1/devices/{NOPE}", "operator", None, 404),
    ("POST", f"/api/v1/devices/{NOPE}/ingest-token", "operator", None, 404),
    ("DELETE", f"/api/v1/devices/{NOPE}/ingest-token", "operator", None, 404),
    ("GET", f"/api/v1/devices/{NOPE}/config", "viewer", None, 404),
    ("PUT", f"/api/v1/devices/{NOPE}/config", "operator", {"send_interval_s": 5}, 404),
    ("GET", f"/api/v1/devices/{NOPE}/config/history", "viewer", None, 404),
    ("GET", f"/api/v1/devices/{NOPE}/commands", "viewer", None, 404),
    ("POST", f"/api/v1/devices/{NOPE}/commands", "operator", {"cmd": "reboot"}, 404),
    ("GET", "/api/v1/commands", "viewer", None, 200),
    ("GET", f"/api/v1/commands/{NOPE}", "viewer", None, 404),
    ("POST", "/api/v1/commands/bulk", "operator", {}, 422),
    ("GET", "/api/v1/ota/rollouts", "viewer", None, 200),
    ("POST", "/api/v1/ota/rollouts", "operator", {}, 422),
    ("GET", f"/api/v1/ota/rollouts/{NOPE}", "viewer", None, 404),
    ("GET", f"/api/v1/ota/rollouts/{NOPE}/devices", "viewer", None, 404),
]


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "anonymous"])
@pytest.mark.parametrize(("method", "path", "minimum", "body", "allowed_status"), MATRIX,
                         ids=[f"{m} {p.replace(NOPE, '{id}')}" for m, p, *_ in MATRIX])
def test_role_matrix(client, auth, role, method, path, minimum, body, allowed_status):
    kwargs = {"headers": auth[role]}
    if body is not None:
        kwargs["json"] = body
    r = client.open(path, method=method, **kwargs)
    if role is None:
        assert_error(r, 401, "unauthorized")
    elif RANK[role] < RANK[minimum]:
        err = assert_error(r, 403, "forbidden")
        assert err["details"]["required"] == minimum
    else:
        assert r.status_code == allowed_status, r.get_data(as_text=True)


def test_role_claim_must_match_the_user(app, client, users):
    from flask_jwt_extended import create_access_token

    from device_manager.service.roles import Role, allows

    assert not allows("root", Role.VIEWER) and not allows(None, Role.VIEWER)
    with app.app_context():
        token = create_access_token(str(users["viewer"]["id"]), additional_claims={"role": "admin", "email": "x"})
    assert_error(client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"}), 401, "token_revoked")


def test_expired_token_is_401(app, client, users):
    from datetime import timedelta

    from flask_jwt_extended import create_access_token

    with app.app_context():
        token = create_access_token(str(users["admin"]["id"]), additional_claims={"role": "admin"},
                                    expires_delta=timedelta(seconds=-10))
    assert_error(client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"}), 401, "token_expired")


def test_token_signed_with_another_key_is_401(make_app, client, users):
    from device_manager.auth import tokens

    other = make_app(environ={"IOTHUB_ENV": "production", "JWT_SECRET_KEY": "another-secret-entirely-32bytes!",
                              "COMMAND_KEY_KEK": "33" * 32})
    with other.app_context():
        forged = tokens.issue(users["viewer"])["access_token"]
    assert_error(client.get("/api/v1/devices", headers={"Authorization": f"Bearer {forged}"}), 401, "invalid_token")
