"""Every console page over the test client (no browser, no platform): renders for the roles that may see it,
paginates, and refuses the rest."""

from __future__ import annotations

import re
import uuid

import pytest

PAGES = ["/console/", "/console/overview/cards", "/console/devices", "/console/events", "/console/commands",
         "/console/ota", "/console/rules", "/console/rules/new", "/console/notifications", "/console/dead-letters",
         "/console/users"]
ADMIN_ONLY = {"/console/dead-letters", "/console/users"}
OPERATOR_UP = {"/console/rules/new"}


def _client(app, email: str, password: str):
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/sign-in").text).group(1)
    resp = client.post("/console/sign-in", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 303, resp.text
    return client


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_pages_render_for_allowed_roles_and_refuse_others(console_app, people, role):
    client = _client(console_app, *people[role])
    for path in PAGES:
        allowed = role == "admin" or (path not in ADMIN_ONLY and (role == "operator" or path not in OPERATOR_UP))
        resp = client.get(path)
        assert resp.status_code == (200 if allowed else 403), (path, resp.status_code)


def test_anonymous_is_sent_to_sign_in_and_htmx_gets_a_redirect_header(console_app):
    client = console_app.test_client()
    resp = client.get("/console/devices")
    assert resp.status_code == 302 and "/console/sign-in" in resp.headers["Location"]
    resp = client.get("/console/overview/cards", headers={"HX-Request": "true"})
    assert resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/console/sign-in")


def test_wrong_password_is_refused(console_app, people):
    client = console_app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/sign-in").text).group(1)
    resp = client.post("/console/sign-in", data={"email": people["admin"][0], "password": "wrong-password",
                                                  "csrf_token": token})
    assert resp.status_code == 401 and "Invalid email or password" in resp.text


def test_devices_list_paginates(console_app, people):
    db = console_app.extensions["device_manager"].db
    tag = uuid.uuid4().hex[:6]
    with db.transaction() as cur:
        cur.execute("INSERT INTO device_types (name, metrics) VALUES (%s, '[]') RETURNING id", (f"pg_{tag}",))
        type_id = cur.fetchone()[0]
        for i in range(30):
            cur.execute("INSERT INTO devices (device_id, name, serial_number, device_type_id) VALUES (%s, %s, %s, %s)",
                        (f"pg-{tag}-{i:02d}", f"Paged {tag} {i:02d}", f"SN-{tag}-{i}", type_id))
    client = _client(console_app, *people["viewer"])
    first = client.get(f"/console/devices?device_type=pg_{tag}").text
    assert "30 total · page 1 of 2" in first and first.count(f"pg-{tag}-") == 25
    nxt = re.search(r'<a href="([^"]+)"[^>]*rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(nxt, headers={"HX-Request": "true", "HX-Target": "devices-table"}).text
    assert "page 2 of 2" in second and second.count(f"pg-{tag}-") == 5 and "<html" not in second


def test_invalid_filter_shows_the_field_error(console_app, people):
    client = _client(console_app, *people["viewer"])
    resp = client.get("/console/devices?connection_status=sideways")
    assert resp.status_code == 422 and "connection_status" in resp.text


def test_overview_figures_are_reused_within_their_ttl():
    from device_manager.console.cache import StaleWhileRefresh

    now = [0.0]
    cache, calls = StaleWhileRefresh(5.0, clock=lambda: now[0]), []

    def compute():
        calls.append(now[0])
        return len(calls)

    assert cache.get(compute) == 1 and cache.get(compute) == 1
    now[0] = 6.0
    assert cache.get(compute) == 2 and calls == [0.0, 6.0]


def test_rule_test_fires_only_after_for_seconds_of_consecutive_matches():
    from datetime import UTC, datetime, timedelta

    from device_manager.service.rule_test import evaluate

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    values = [5, 12, 13, 4, 12, 12, 12, 12]
    points = [(t0 + timedelta(seconds=10 * i), v) for i, v in enumerate(values)]
    outcome = evaluate("d1", points, "gt", 10, 20)
    assert outcome.matching == 6 and outcome.points == 8 and outcome.last_value == 12
    assert outcome.fires_at == t0 + timedelta(seconds=60)  # the run from 40 s lasts 20 s at 60 s
    assert evaluate("d1", points, "gt", 10, 60).fires_at is None


def test_signed_out_cookie_no_longer_works(console_app, people):
    client = _client(console_app, *people["operator"])
    page = client.get("/console/devices").text
    old = client.get_cookie("iothub_console", path="/console").value
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/console/sign-out", data={"csrf_token": token}).status_code == 303
    replayed = console_app.test_client()
    replayed.set_cookie("iothub_console", old, path="/console")
    resp = replayed.get("/console/devices")
    assert resp.status_code == 302 and "/console/sign-in" in resp.headers["Location"]


def test_a_changed_role_ends_the_session(console_app):
    from device_manager.auth.passwords import hash_password
    from device_manager.repositories.users import UserRepository

    repo = UserRepository(console_app.extensions["device_manager"].db)
    email = f"demoted-{uuid.uuid4().hex[:6]}@example.test"
    made = repo.create(email, hash_password("correct-horse-battery"), "operator")
    client = _client(console_app, email, "correct-horse-battery")
    assert client.get("/console/rules/new").status_code == 200
    repo.update(made["id"], {"role": "viewer"})
    assert client.get("/console/rules/new").status_code == 302


def test_sign_in_limit_counts_spacing_and_case_variants_of_one_email(make_app):
    app = make_app(LOGIN_RATE_LIMIT="2 per minute")
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/sign-in").text).group(1)
    email = f"limit-{uuid.uuid4().hex[:8]}@example.com"
    codes = [client.post("/console/sign-in", data={"email": variant, "password": "wrong", "csrf_token": token})
             .status_code for variant in (email, f" {email}", email.upper() + "  ")]
    assert codes == [401, 401, 429], codes
