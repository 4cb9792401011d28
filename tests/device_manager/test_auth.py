"""Login, refresh, logout (revocation survives a restart), /auth/me, rate limit and production start-up."""

from __future__ import annotations

import pytest

from tests.device_manager.conftest import PASSWORD, assert_error


def _login(client, email, password=PASSWORD):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def test_login_returns_tokens_that_work(client, users):
    r = _login(client, users["operator"]["email"].upper())
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["email"] == users["operator"]["email"] and me.get_json()["role"] == "operator"
    assert "password" not in me.get_json() and "password_hash" not in me.get_json()


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_login_rejects_bad_password(client, users, password):
    r = _login(client, users["viewer"]["email"], password)
    assert_error(r, 401 if password else 422)


def test_login_unknown_email_is_401(client, uid):
    assert_error(_login(client, f"nobody-{uid}@example.test"), 401, "invalid_credentials")


def test_refresh_issues_access_token_and_rejects_access_token(client, tokens):
    r = client.post("/api/v1/auth/refresh",
                    headers={"Authorization": f"Bearer {tokens['viewer']['refresh_token']}"})
    assert r.status_code == 200, r.get_json()
    assert "access_token" in r.get_json() and "refresh_token" not in r.get_json()
    wrong = client.post("/api/v1/auth/refresh",
                        headers={"Authorization": f"Bearer {tokens['viewer']['access_token']}"})
    assert_error(wrong, 401)


def test_refresh_token_cannot_be_used_as_access_token(client, tokens):
    r = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['admin']['refresh_token']}"})
    assert_error(r, 401)


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Basic abc", "Bearer "])
def test_bad_authorization_headers_are_401(client, header):
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": header}), 401)


def test_logout_revokes_both_tokens_across_restart(client, users, make_app):
    body = _login(client, users["viewer"]["email"]).get_json()
    access = {"Authorization": f"Bearer {body['access_token']}"}
    refresh = {"Authorization": f"Bearer {body['refresh_token']}"}
    assert client.get("/api/v1/auth/me", headers=access).status_code == 200
    r = client.post("/api/v1/auth/logout", headers=access, json={"refresh_token": body["refresh_token"]})
    assert r.status_code == 204, r.get_data(as_text=True)
    assert_error(client.get("/api/v1/auth/me", headers=access), 401, "token_revoked")
    restarted = make_app().test_client()  # a new app instance on the same database
    assert_error(restarted.get("/api/v1/auth/me", headers=access), 401, "token_revoked")
    assert_error(restarted.post("/api/v1/auth/refresh", headers=refresh), 401, "token_revoked")


def test_logout_rejects_someone_elses_refresh_token(client, users, tokens):
    body = _login(client, users["operator"]["email"]).get_json()
    r = client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {body['access_token']}"},
                    json={"refresh_token": tokens["viewer"]["refresh_token"]})
    assert_error(r, 401)


def test_login_rate_limited_per_email_and_ip(make_app, users, uid):
    limited = make_app(LOGIN_RATE_LIMIT="3 per minute").test_client()
    email = f"ratelimit-{uid}@example.test"
    for _ in range(3):
        assert_error(_login(limited, email, "wrong-password"), 401)
    denied = _login(limited, email, "wrong-password")
    err = assert_error(denied, 429, "rate_limited")
    assert "3 per 1 minute" in err["message"] and int(denied.headers["Retry-After"]) > 0
    # another email from the same address still has its own budget
    assert _login(limited, users["viewer"]["email"]).status_code == 200


def test_inactive_user_cannot_login(app, client, uid):
    from device_manager.auth.passwords import hash_password
    from device_manager.repositories.users import UserRepository

    email = f"inactive-{uid}@example.test"
    UserRepository(app.extensions["device_manager"].db).create(email, hash_password(PASSWORD), "viewer", False)
    assert_error(_login(client, email), 401, "invalid_credentials")


def test_refuses_to_start_without_jwt_secret_in_production(dm_config):
    from device_manager import create_app
    from iothub.settings import SettingsError

    config = {**dm_config, "environ": {k: v for k, v in dm_config["environ"].items() if k != "JWT_SECRET_KEY"}}
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        create_app(config)


def test_first_admin_created_from_environment(make_app, app, uid):
    from device_manager.repositories.users import UserRepository

    repo = UserRepository(app.extensions["device_manager"].db)
    email = f"boot-{uid}@example.test"
    make_app(admin_email=email, admin_password="bootstrap-password")
    # an admin already exists in this run's database (the users fixture or an earlier bootstrap): no second one
    created = repo.get_for_login(email)
    admins = repo.count_active_admins()
    assert admins >= 1
    if created is not None:
        assert created["role"] == "admin"


def test_logout_without_body_revokes_the_presented_token(client, users):
    body = _login(client, users["operator"]["email"]).get_json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert_error(client.get("/api/v1/auth/me", headers=headers), 401, "token_revoked")
    refreshed = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {body['refresh_token']}"})
    assert refreshed.status_code == 200  # only the presented token was revoked


@pytest.mark.parametrize("change", [{"is_active": False}, {"role": "viewer"}])
def test_disabling_or_demoting_a_user_cuts_their_tokens_at_once(client, auth, uid, change):
    email = f"cut-{uid}@example.test"
    made = client.post("/api/v1/users", headers=auth["admin"],
                       json={"email": email, "password": PASSWORD, "role": "operator"}).get_json()
    body = _login(client, email).get_json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/v1/devices", headers=headers).status_code == 200
    assert client.patch(f"/api/v1/users/{made['id']}", headers=auth["admin"], json=change).status_code == 200
    assert_error(client.get("/api/v1/devices", headers=headers), 401, "token_revoked")
    refresh = {"Authorization": f"Bearer {body['refresh_token']}"}
    assert_error(client.post("/api/v1/auth/refresh", headers=refresh), 401, "token_revoked")


def test_a_password_change_revokes_the_users_tokens_and_nothing_else_does(client, auth, uid):
    email = f"pw-{uid}@example.test"
    user = client.post("/api/v1/users", headers=auth["admin"],
                       json={"email": email, "password": "first-password-1", "role": "viewer"}).get_json()
    tokens = client.post("/api/v1/auth/login", json={"email": email, "password": "first-password-1"}).get_json()
    access = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    path = f"/api/v1/users/{user['id']}"
    assert client.patch(path, headers=auth["admin"], json={"email": email.upper()}).status_code == 200
    assert client.get("/api/v1/auth/me", headers=access).status_code == 200  # an email change ends nothing
    assert client.patch(path, headers=auth["admin"], json={"password": "second-password-2"}).status_code == 200
    assert_error(client.get("/api/v1/auth/me", headers=access), 401, "token_revoked")
    assert_error(client.post("/api/v1/auth/refresh", headers=refresh), 401, "token_revoked")
    again = client.post("/api/v1/auth/login", json={"email": email, "password": "second-password-2"}).get_json()
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {again['access_token']}"}).status_code \
        == 200
    assert client.get("/api/v1/auth/me", headers=auth["admin"]).status_code == 200  # other users keep theirs
