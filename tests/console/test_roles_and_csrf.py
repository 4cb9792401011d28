"""Roles as in the API: a viewer sees no write controls and is refused anyway; forged posts fail CSRF."""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from playwright.sync_api import expect

from tests.console.conftest import find_device, shoot

pytestmark = pytest.mark.slow


def _session(base_url: str, email: str, password: str) -> tuple[requests.Session, str]:
    """A signed-in HTTP session and its CSRF token, as a browser would get them."""
    s = requests.Session()  # over HTTPS, so it keeps the Secure session cookie as a browser does
    s.headers["Referer"] = f"{base_url}/console/"  # a browser's same-origin form post names its page
    form = s.get(f"{base_url}/console/sign-in", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = s.post(f"{base_url}/console/sign-in", data={"email": email, "password": password, "csrf_token": token},
               allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    s.set_cookie_header = r.headers["Set-Cookie"]
    page = s.get(f"{base_url}/console/devices", timeout=10).text
    return s, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _command_count(app) -> int:
    with app.extensions["device_manager"].db.transaction() as cur:
        cur.execute("SELECT count(*) FROM commands")
        return cur.fetchone()[0]


def test_session_cookie_is_secure_httponly_samesite(base_url, people):
    s, _ = _session(base_url, *people["viewer"])
    attributes = [a.strip() for a in s.set_cookie_header.split(";")]
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/console"} <= set(attributes), attributes


def test_viewer_sees_no_write_controls(sign_in, stack):
    page = sign_in("viewer")
    expect(page.locator("[data-role]")).to_have_text("viewer")
    expect(page.locator("nav >> text=Users")).to_have_count(0)
    find_device(page, stack["device_id"]).click()
    expect(page.locator("h1")).to_contain_text(stack["device_id"])
    expect(page.locator("button:has-text('Send command')")).to_have_count(0)
    expect(page.locator("input[name=device_ids]")).to_have_count(0)
    page.click("nav >> text=Alarms")
    expect(page.locator("button:has-text('Acknowledge')")).to_have_count(0)
    page.click("nav >> text=Rules")
    expect(page.locator("text=New threshold rule")).to_have_count(0)
    expect(page.locator("button[data-toggle]")).to_have_count(0)
    page.click("nav >> text=OTA")
    expect(page.locator("text=Start a rollout")).to_have_count(0)
    shoot(page, "viewer")


def test_viewer_write_is_refused_even_with_a_valid_token(base_url, people, console_app, stack):
    s, token = _session(base_url, *people["viewer"])
    device = _device_uuid(s, base_url, stack["device_id"])
    before = _command_count(console_app)
    r = s.post(f"{base_url}/console/devices/{device}/commands", data={"cmd": "request_status", "csrf_token": token},
               timeout=10)
    assert r.status_code == 403, r.text
    assert _command_count(console_app) == before
    assert s.get(f"{base_url}/console/users", timeout=10).status_code == 403


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_forged_form_post_is_refused(base_url, people, console_app, stack, token):
    s, _ = _session(base_url, *people["operator"])
    device = _device_uuid(s, base_url, stack["device_id"])
    before = _command_count(console_app)
    form = {"cmd": "request_status"} | ({"csrf_token": token} if token else {})
    r = s.post(f"{base_url}/console/devices/{device}/commands", data=form, timeout=10)
    assert r.status_code == 400 and "CSRF" in r.text, r.text
    assert _command_count(console_app) == before


def test_json_api_is_not_csrf_checked(base_url, people):
    r = requests.post(f"{base_url}/api/v1/auth/login", json={"email": people["viewer"][0],
                                                             "password": people["viewer"][1]}, timeout=10)
    assert r.status_code == 200 and "access_token" in r.json()


def _device_uuid(s: requests.Session, base_url: str, device_id: str) -> str:
    page = s.get(f"{base_url}/console/devices", params={"q": device_id}, timeout=10).text
    return re.search(r'/console/devices/([0-9a-f-]{36})', page).group(1)


def test_a_password_change_ends_the_users_console_sessions(base_url, console_app):
    users = console_app.extensions["device_manager"].users
    email = f"pw-change-{uuid.uuid4().hex[:8]}@example.test"
    user_id = str(users.create(email, "first-password-1", "viewer")["id"])
    s, _ = _session(base_url, email, "first-password-1")
    users.update(user_id, {"email": email.upper()})  # a change that is not the password: the session stays
    assert s.get(f"{base_url}/console/devices", allow_redirects=False, timeout=10).status_code == 200
    users.update(user_id, {"password": "second-password-2"})
    r = s.get(f"{base_url}/console/devices", allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303) and "/console/sign-in" in r.headers["Location"], r.status_code
    fresh, _ = _session(base_url, email, "second-password-2")  # signing in again with the new password works
    assert fresh.get(f"{base_url}/console/devices", allow_redirects=False, timeout=10).status_code == 200
