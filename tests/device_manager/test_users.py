"""Users CRUD (admin only), first-admin bootstrap and the access log."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.device_manager.conftest import assert_error
from tests.support import infra


def test_user_crud_and_password_change(client, auth, uid):
    email = f"new-{uid}@example.test"
    r = client.post("/api/v1/users", headers=auth["admin"],
                    json={"email": email, "password": "initial-password", "role": "viewer"})
    assert r.status_code == 201, r.get_json()
    user = r.get_json()
    assert set(user) == {"id", "email", "role", "is_active", "created_at", "updated_at"}
    path = f"/api/v1/users/{user['id']}"
    r = client.patch(path, headers=auth["admin"], json={"role": "operator", "password": "changed-password"})
    assert r.get_json()["role"] == "operator"
    assert client.post("/api/v1/auth/login", json={"email": email, "password": "initial-password"}).status_code == 401
    login = client.post("/api/v1/auth/login", json={"email": email, "password": "changed-password"})
    assert login.status_code == 200
    listed = client.get(f"/api/v1/users?q=new-{uid}&role=operator", headers=auth["admin"]).get_json()
    assert [u["email"] for u in listed["items"]] == [email]
    assert_error(client.post("/api/v1/users", headers=auth["admin"],
                             json={"email": email.upper(), "password": "another-password", "role": "viewer"}),
                 409, "conflict")
    assert client.delete(path, headers=auth["admin"]).status_code == 204
    assert_error(client.get(path, headers=auth["admin"]), 404)


@pytest.mark.parametrize("body", [
    {"email": "not-an-email", "password": "long-enough-pw", "role": "viewer"},
    {"email": "a@example.test", "password": "short", "role": "viewer"},
    {"email": "a@example.test", "password": "long-enough-pw", "role": "superuser"},
    {"email": "a@example.test", "password": "long-enough-pw", "role": "viewer", "is_admin": True},
])
def test_user_bad_input(client, auth, body):
    assert_error(client.post("/api/v1/users", headers=auth["admin"], json=body), 422, "validation_error")


def test_admin_cannot_delete_self(client, auth, users):
    assert_error(client.delete(f"/api/v1/users/{users['admin']['id']}", headers=auth["admin"]), 409, "conflict")


def test_users_sorted(client, auth, uid):
    for prefix in ("b", "a", "c"):
        client.post("/api/v1/users", headers=auth["admin"],
                    json={"email": f"{prefix}-sort-{uid}@example.test", "password": "long-enough-pw", "role": "viewer"})
    r = client.get(f"/api/v1/users?q=-sort-{uid}&sort=-email", headers=auth["admin"]).get_json()
    assert [u["email"][0] for u in r["items"]] == ["c", "b", "a"]


@pytest.fixture
def empty_db_dsn():
    """A database of its own (migrated, no users), for bootstrap tests."""
    name = f"iothub_test_boot_{uuid.uuid4().hex[:8]}"
    dsn = infra.create_database(name)
    yield dsn
    infra.drop_database(name)


def test_first_admin_bootstrap_once(make_app, empty_db_dsn, uid):
    app = make_app(database_url=empty_db_dsn, admin_email=f"root-{uid}@example.test",
                   admin_password="bootstrap-password")
    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={"email": f"root-{uid}@example.test",
                                                    "password": "bootstrap-password"})
    assert login.status_code == 200, login.get_json()
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).get_json()["role"] == "admin"
    # a restart with other ADMIN_* values creates nobody: an admin exists already
    make_app(database_url=empty_db_dsn, admin_email=f"second-{uid}@example.test", admin_password="another-password")
    emails = [u["email"] for u in client.get("/api/v1/users", headers=headers).get_json()["items"]]
    assert emails == [f"root-{uid}@example.test"]
    # the last active admin cannot be demoted or disabled
    me = client.get("/api/v1/auth/me", headers=headers).get_json()
    for change in ({"role": "viewer"}, {"is_active": False}):
        assert_error(client.patch(f"/api/v1/users/{me['id']}", headers=headers, json=change), 409, "conflict")


def test_one_access_log_line_per_request(client, auth, caplog):
    with caplog.at_level(logging.INFO, logger="device_manager.access"):
        client.get("/api/v1/devices?page_size=1", headers=auth["viewer"])
    lines = [r for r in caplog.records if r.name == "device_manager.access"]
    assert len(lines) == 1
    rec = lines[0]
    assert (rec.method, rec.route, rec.status) == ("GET", "/api/v1/devices", 200) and rec.duration_ms >= 0
