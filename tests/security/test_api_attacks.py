"""Attacks on the device-manager API (real PostgreSQL): forged/expired/unsigned/tampered/revoked tokens, a viewer
trying every write endpoint, injection and traversal strings in every query parameter and path segment, oversized
bodies. Everything refused gets the standard error body, nothing answers 5xx, and the database does not change."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
import time
import uuid
from urllib.parse import quote, urlencode

import jwt as pyjwt
import pytest

from tests.device_manager.conftest import assert_error
from tests.device_manager.ops_data import insert_dead_letter, insert_event, insert_notification, insert_rule

ATTACKS = [
    "' OR 1=1--", "' OR '1'='1", "1; DROP TABLE devices", "1); DELETE FROM users;--", "\" OR \"\"=\"",
    "%' OR 1=1 --", "admin'--", "' UNION SELECT password_hash FROM users--", "$$; DROP TABLE devices; $$",
    "../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "....//....//etc/passwd",
    "..\\..\\windows\\win.ini", "/etc/passwd", "null\x00byte", "%00", "\x00", "*", "%", "_", "\\", "-created_at;",
    "name desc", "name; DROP TABLE devices", "(select 1)", "1e309", "-1", "999999999999999999999999", "true",
    "\u202e\u0000", "{{7*7}}", "${jndi:ldap://x}", "<script>alert(1)</script>", "x" * 5000,
]
PROTECTED = ("users", "device_types", "devices", "device_configs", "commands", "ota_rollouts", "ota_device_states",
             "rules", "events", "subscriptions", "notifications", "notification_attempts", "dead_letters",
             "token_blocklist")


def db_of(app):
    return app.extensions["device_manager"].db


def snapshot(app) -> dict[str, tuple[int, str]]:
    """(row count, md5 of every row) per table the API can write."""
    out = {}
    with db_of(app).transaction() as cur:
        for table in PROTECTED:
            cur.execute(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "  # noqa: S608
                        f"FROM {table} t")
            out[table] = cur.fetchone()
    return out


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256(claims: dict, key: bytes) -> str:
    """A compact HS256 JWT signed by hand (PyJWT refuses an empty key)."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def assert_refused(resp, status: int, codes: tuple[str, ...] | None = None) -> dict:
    err = assert_error(resp, status)
    if codes:
        assert err["code"] in codes, err
    return err


# --- tokens ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def victim(app, device):
    """A device whose deletion (operator) would show that a bad token got through."""
    return device


def _tokens_for(app, user, **kwargs):
    from device_manager.auth import tokens as issuer

    with app.app_context():
        return issuer.issue(user, **kwargs)


def forged_tokens(app, users, tokens) -> dict[str, str]:
    """Tokens an attacker could build; none of them may authenticate."""
    secret = app.config["JWT_SECRET_KEY"]
    admin = users["admin"]
    now = int(time.time())
    good = claims_of(tokens["admin"]["access_token"])
    viewer_token = tokens["viewer"]["access_token"]
    head, payload, signature = viewer_token.split(".")
    tampered = b64({**claims_of(viewer_token), "role": "admin"})
    none_claims = {**good, "jti": str(uuid.uuid4())}
    return {
        "wrong_secret": pyjwt.encode({**good, "jti": str(uuid.uuid4())}, "not-the-secret-" + "x" * 32, "HS256"),
        "empty_secret_hs256": hs256({**good, "jti": str(uuid.uuid4())}, b""),
        "expired": pyjwt.encode({**good, "jti": str(uuid.uuid4()), "iat": now - 7200, "nbf": now - 7200,
                                 "exp": now - 3600}, secret, "HS256"),
        "not_yet_valid": pyjwt.encode({**good, "jti": str(uuid.uuid4()), "iat": now + 3600, "nbf": now + 3600,
                                       "exp": now + 7200}, secret, "HS256"),
        "alg_none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(none_claims)}.",
        "alg_none_no_dot": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(none_claims)}",
        "alg_None_with_signature": f"{b64({'alg': 'None', 'typ': 'JWT'})}.{b64(none_claims)}.{signature}",
        "tampered_role": f"{head}.{tampered}.{signature}",
        "tampered_sub": f"{head}.{b64({**claims_of(viewer_token), 'sub': str(admin['id'])})}.{signature}",
        "signature_stripped": f"{head}.{payload}.",
        "header_swapped_to_hs512": f"{b64({'alg': 'HS512', 'typ': 'JWT'})}.{payload}.{signature}",
        "refresh_as_access": tokens["admin"]["refresh_token"],
        "unknown_user": pyjwt.encode({**good, "jti": str(uuid.uuid4()), "sub": str(uuid.uuid4())}, secret, "HS256"),
        "no_role_claim": pyjwt.encode({k: v for k, v in {**good, "jti": str(uuid.uuid4())}.items() if k != "role"},
                                      secret, "HS256"),
        "role_claim_escalated": pyjwt.encode({**claims_of(viewer_token), "jti": str(uuid.uuid4()), "role": "admin"},
                                             secret, "HS256"),
        "garbage": "eyJ" + "A" * 40,
        "three_empty_parts": "..",
        "huge": "a." * 4000 + "b",
    }


TOKEN_CASES = ("wrong_secret", "empty_secret_hs256", "expired", "not_yet_valid", "alg_none", "alg_none_no_dot",
               "alg_None_with_signature", "tampered_role", "tampered_sub", "signature_stripped",
               "header_swapped_to_hs512", "refresh_as_access", "unknown_user", "no_role_claim",
               "role_claim_escalated", "garbage", "three_empty_parts", "huge")


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_bad_tokens_are_401_and_change_nothing(app, client, users, tokens, victim, case):
    token = forged_tokens(app, users, tokens)[case]
    before = snapshot(app)
    resp = client.delete(f"/api/v1/devices/{victim['id']}", headers=bearer(token))
    err = assert_refused(resp, 401)
    if case == "expired":
        assert err["code"] == "token_expired"
    if case in ("wrong_secret", "tampered_role", "tampered_sub", "alg_none", "alg_None_with_signature"):
        assert err["code"] == "invalid_token", err
    assert_refused(client.get("/api/v1/users", headers=bearer(token)), 401)  # admin-only read: no data either
    assert snapshot(app) == before


def test_tokens_in_other_places_are_ignored(app, client, tokens, victim):
    token = tokens["admin"]["access_token"]
    before = snapshot(app)
    for kwargs in ({"query_string": {"jwt": token}}, {"query_string": {"access_token": token}},
                   {"headers": {"Cookie": f"access_token_cookie={token}"}},
                   {"headers": {"Authorization": token}}, {"headers": {"Authorization": f"Basic {token}"}},
                   {"headers": {"Authorization": f"Bearer {token} {token}"}},
                   {"headers": {"X-Access-Token": token}}):
        assert_refused(client.delete(f"/api/v1/devices/{victim['id']}", **kwargs), 401)
    assert snapshot(app) == before


def test_logged_out_tokens_are_revoked(app, client, users):
    fresh = _tokens_for(app, users["admin"])
    headers = bearer(fresh["access_token"])
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers,
                       json={"refresh_token": fresh["refresh_token"]}).status_code == 204
    before = snapshot(app)
    assert_refused(client.get("/api/v1/users", headers=headers), 401, ("token_revoked",))
    assert_refused(client.post("/api/v1/users", headers=headers,
                               json={"email": f"x-{uuid.uuid4().hex[:6]}@example.test", "password": "p" * 12,
                                     "role": "admin"}), 401, ("token_revoked",))
    assert_refused(client.post("/api/v1/auth/refresh", headers=bearer(fresh["refresh_token"])), 401,
                   ("token_revoked",))
    assert snapshot(app) == before


# --- a viewer against every write endpoint --------------------------------------------------------------------------

@pytest.fixture
def world(app, users, device, device_type, uid):
    """One real row of every resource a write endpoint can address."""
    db = db_of(app)
    rule_id = insert_rule(db, f"sec-{uid}")
    event_id = insert_event(db, device["device_id"], rule_id=rule_id)
    notification_id = insert_notification(db, event_id)
    dl_id = insert_dead_letter(db)
    with db.transaction() as cur:
        cur.execute("INSERT INTO subscriptions (name, channel, target) VALUES (%s, 'log', 'x') RETURNING id",
                    (f"sec-{uid}",))
        sub_id = cur.fetchone()[0]
        cur.execute("INSERT INTO ota_rollouts (fw_version, url, sha256, size_bytes) VALUES "
                    "('9.9.9', 'https://fw.example.test/x.bin', %s, 10) RETURNING id", ("a" * 64,))
        rollout_id = cur.fetchone()[0]
        cur.execute("INSERT INTO commands (id, device_id, cmd, expires_at) VALUES (%s, %s, 'reboot', now() + "
                    "interval '1 hour') RETURNING id", (uuid.uuid4(), device["id"]))
        cmd_id = cur.fetchone()[0]
        cur.execute("INSERT INTO firmware_images (fw_version, object_key, sha256, size_bytes) VALUES "
                    "('9.9.9', %s, %s, 10) RETURNING id", (f"firmware/sec-{uid}.bin", "a" * 64))
        firmware_id = cur.fetchone()[0]
    return {"device_id": device["id"], "type_id": device_type["id"], "user_id": users["operator"]["id"],
            "rule_id": rule_id, "event_id": event_id, "notification_id": notification_id, "dl_id": dl_id,
            "sub_id": sub_id, "rollout_id": rollout_id, "cmd_id": cmd_id, "firmware_id": firmware_id,
            "key": f"{device['device_id']}/telemetry/2026/03/01/000000.ndjson"}


def write_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every write endpoint under /api/v1 except the caller's own session (auth/*)."""
    return sorted({(method, rule.rule) for rule in app.url_map.iter_rules()
                   for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}
                   if rule.rule.startswith("/api/v1/") and not rule.rule.startswith("/api/v1/auth/")})


def fill(rule: str, ids: dict) -> str:
    def one(match):
        name = match.group(2)
        assert name in ids, f"no real id for path parameter {name} in {rule}: add one to the world fixture"
        return str(ids[name])
    return re.sub(r"<(?:(\w+):)?(\w+)>", one, rule)


def plausible_bodies(world: dict, uid: str) -> dict[tuple[str, str], dict]:
    """Bodies that would pass validation, so a missing role check would show up as a changed database."""
    name = f"viewer-{uid}"
    return {
        ("POST", "/api/v1/users"): {"email": f"{name}@example.test", "password": "p" * 12, "role": "admin"},
        ("PATCH", "/api/v1/users/<uuid:user_id>"): {"role": "admin"},
        ("POST", "/api/v1/device-types"): {"name": name},
        ("PATCH", "/api/v1/device-types/<uuid:type_id>"): {"description": "pwned"},
        ("POST", "/api/v1/devices"): {"device_id": name, "name": name, "device_type_id": str(world["type_id"])},
        ("POST", "/api/v1/devices/bulk"): {"devices": [{"device_id": name, "name": name,
                                                        "device_type_id": str(world["type_id"])}]},
        ("PATCH", "/api/v1/devices/<uuid:device_id>"): {"name": "pwned"},
        ("PUT", "/api/v1/devices/<uuid:device_id>/config"): {"send_interval_s": 5},
        ("POST", "/api/v1/devices/<uuid:device_id>/commands"): {"cmd": "reboot"},
        ("POST", "/api/v1/commands/bulk"): {"cmd": "reboot", "device_ids": [str(world["device_id"])]},
        ("POST", "/api/v1/ota/rollouts"): {"fw_version": "1.0.1", "url": "https://fw.example.test/a.bin",
                                           "sha256": "b" * 64, "size_bytes": 10,
                                           "device_ids": [str(world["device_id"])]},
        ("POST", "/api/v1/rules"): {"name": name, "metric": "temperature", "operator": "gt", "threshold": 1},
        ("PATCH", "/api/v1/rules/<uuid:rule_id>"): {"enabled": False},
        ("POST", "/api/v1/subscriptions"): {"name": name, "channel": "log", "target": "x"},
        ("PATCH", "/api/v1/subscriptions/<uuid:sub_id>"): {"enabled": False},
        ("POST", "/api/v1/events/<uuid:event_id>/resolve"): {"comment": "pwned"},
    }


def test_viewer_cannot_use_any_write_endpoint(app, client, auth, world, uid):
    routes = write_routes(app)
    assert len(routes) >= 25, routes  # the enumeration found the API
    bodies = plausible_bodies(world, uid)
    assert set(bodies) <= set(routes), set(bodies) - set(routes)
    before = snapshot(app)
    for method, rule in routes:
        path = fill(rule, world)
        body = bodies.get((method, rule), {} if method in ("POST", "PUT", "PATCH") else None)
        resp = client.open(path, method=method, headers=auth["viewer"], **({} if body is None else {"json": body}))
        err = assert_refused(resp, 403, ("forbidden",))
        assert err["details"]["role"] == "viewer", (method, rule, err)
        assert_refused(client.open(path, method=method, **({} if body is None else {"json": body})), 401)
    assert snapshot(app) == before


# --- injection and traversal in query parameters and paths -----------------------------------------------------------

def read_operations(client) -> list[tuple[str, list[str]]]:
    """(path template, query parameter names) of every GET under /api/v1 from the OpenAPI document."""
    spec = client.get("/api/v1/openapi.json").get_json()
    ops = []
    for path, item in spec["paths"].items():
        get = item.get("get")
        if get is None or not path.startswith("/api/v1/") or "openapi" in path:
            continue
        params = [p["name"] for p in get.get("parameters", []) + item.get("parameters", []) if p["in"] == "query"]
        ops.append((path, params))
    return sorted(ops)


def fill_openapi(path: str, ids: dict) -> str:
    def one(match):
        assert match.group(1) in ids, f"no real id for {match.group(1)} in {path}"
        return quote(str(ids[match.group(1)]), safe="/")
    return re.sub(r"\{(\w+)\}", one, path)


def assert_no_leak(resp, attack: str, where: str) -> None:
    """A 200 to an injection string lists only rows that contain the string literally (a LIKE search for "_"
    finds names with an underscore), never rows the string matched as SQL or as a wildcard."""
    if resp.status_code != 200 or not resp.is_json:
        return
    body = resp.get_json()
    if isinstance(body, dict) and "items" in body and "total" in body:
        for item in body["items"]:
            assert attack.lower() in json.dumps(item, ensure_ascii=False).lower(), (where, attack, item)
    text = resp.get_data(as_text=True)
    assert "password_hash" not in text and "root:x:0:0" not in text


def test_injection_in_every_query_parameter(app, client, auth, world):
    ops = read_operations(client)
    assert len(ops) >= 15, ops
    before = snapshot(app)
    tried, answered = 0, set()
    for path, params in ops:
        url = fill_openapi(path, world)
        for param in params:
            for attack in ATTACKS:
                resp = client.get(f"{url}?{urlencode({param: attack})}", headers=auth["admin"])
                tried += 1
                assert resp.status_code < 500, (url, param, attack, resp.get_data(as_text=True)[:300])
                if resp.status_code >= 400:
                    assert_error(resp, resp.status_code)
                else:
                    answered.add(param)
                    if param not in ("page", "page_size"):
                        assert_no_leak(resp, attack, f"{url} {param}")
    assert tried > 500
    assert {"q", "device_id", "name"} & answered, answered  # free-text filters reached the database
    assert snapshot(app) == before


@pytest.mark.parametrize("attack", [*ATTACKS, "..", ".", "%2e%2e", "..%00", "%252e%252e%252f"])
def test_injection_in_path_segments(app, client, auth, world, attack):
    before = snapshot(app)
    segment = quote(attack, safe="")
    for template in ("/api/v1/devices/{}", "/api/v1/devices/{}/config", "/api/v1/devices/{}/telemetry",
                     "/api/v1/devices/{}/archive", "/api/v1/device-types/{}", "/api/v1/users/{}",
                     "/api/v1/rules/{}", "/api/v1/events/{}", "/api/v1/commands/{}", "/api/v1/ota/rollouts/{}",
                     "/api/v1/dead-letters/{}", "/api/v1/subscriptions/{}", "/api/v1/notifications/{}"):
        for path in (template.format(segment), template.format(attack)):
            resp = client.get(path, headers=auth["admin"])
            assert resp.status_code < 500, (path, resp.get_data(as_text=True)[:300])
            assert resp.status_code in (404, 405, 308) or (resp.status_code == 200 and not attack.strip(".")), path
            if resp.status_code >= 400:
                assert_error(resp, resp.status_code)
            resp = client.delete(path, headers=auth["admin"])
            assert resp.status_code < 500 and resp.status_code != 204, path
    assert snapshot(app) == before


@pytest.fixture
def archive_app(make_app, device, tmp_path):
    """A filesystem-archive app with one object of the device, one of a neighbour and a secret outside the root."""
    root = tmp_path / "archive"
    did = device["device_id"]
    for owner in (did, did + "-other"):
        day = root / owner / "telemetry" / "2026" / "03" / "01"
        day.mkdir(parents=True)
        (day / "235500.ndjson").write_bytes(f'{{"owner": "{owner}"}}\n'.encode())
    (tmp_path / "passwd").write_bytes(b"root:x:0:0:secret\n")
    return make_app(archive_backend="filesystem", archive_dir=str(root)), did


TRAVERSALS = [
    "../../passwd", "..%2F..%2Fpasswd", "%2e%2e%2f%2e%2e%2fpasswd", "%252e%252e%252fpasswd", "..%5c..%5cpasswd",
    "{did}/../../passwd", "{did}/telemetry/2026/03/01/../../../../../passwd",
    "/{did}/telemetry/2026/03/01/235500.ndjson", "//etc/passwd",
    "{did}%2Ftelemetry%2F2026%2F03%2F01%2F235500.ndjson%00.gz", "{did}/telemetry/2026/03/01/235500.ndjson%00",
    "{did}/telemetry/2026/03/01/235500.ndjson%0a", "{did}/telemetry/2026/03/01/235500.ndjson/.",
    "{other}/telemetry/2026/03/01/235500.ndjson", "{did}/../{other}/telemetry/2026/03/01/235500.ndjson",
    "{did}/telemetry/2026/03/01/..%2F..%2F..%2F..%2F..%2F{other}%2Ftelemetry%2F2026%2F03%2F01%2F235500.ndjson",
    "{did}/telemetry/%D9%A2%D9%A0%D9%A2%D9%A6/03/01/235500.ndjson", "' OR 1=1--", "{did}/telemetry/2026/03/01/*",
]


@pytest.mark.parametrize("key", TRAVERSALS)
def test_archive_download_cannot_escape_the_device(archive_app, device, auth, key):
    app, did = archive_app
    client = app.test_client()
    ok = client.get(f"/api/v1/devices/{device['id']}/archive/{did}/telemetry/2026/03/01/235500.ndjson",
                    headers=auth["viewer"])
    assert ok.status_code == 200 and did.encode() in ok.data  # the real object is served: the test can fail
    resp = client.get(f"/api/v1/devices/{device['id']}/archive/{key.format(did=did, other=did + '-other')}",
                      headers=auth["viewer"])
    assert resp.status_code < 500, resp.get_data(as_text=True)[:300]
    assert b"root:x:0:0" not in resp.data and b'"owner"' not in resp.data  # neither file's content leaked
    assert resp.status_code in (404, 308), (key, resp.status_code)
    if resp.status_code == 404:
        assert_error(resp, 404, "not_found")


# --- oversized bodies -------------------------------------------------------------------------------------------------

def test_oversized_bodies_are_413_and_change_nothing(app, client, auth, world, dm_config):
    limit = dm_config["max_body_bytes"]
    pad = "x" * (limit + 1)
    before = snapshot(app)
    for method, path, body in (
            ("POST", "/api/v1/devices", {"device_id": "big", "name": pad, "device_type_id": str(world["type_id"])}),
            ("POST", "/api/v1/devices/bulk", {"devices": [{"name": pad}]}),
            ("PATCH", f"/api/v1/devices/{world['device_id']}", {"name": pad}),
            ("PUT", f"/api/v1/devices/{world['device_id']}/config", {"send_interval_s": 5, "pad": pad}),
            ("POST", "/api/v1/rules", {"name": pad}),
            ("POST", "/api/v1/users", {"email": "a@b.c", "password": pad, "role": "admin"}),
            ("POST", "/api/v1/auth/login", {"email": "a@b.c", "password": pad}),
            ("POST", f"/api/v1/events/{world['event_id']}/resolve", {"comment": pad})):
        resp = client.open(path, method=method, headers=auth["admin"], json=body)
        assert_refused(resp, 413, ("payload_too_large",))
    assert snapshot(app) == before


def test_oversized_chunked_bodies_are_refused_and_change_nothing(app, client, auth, world, dm_config):
    """Without a Content-Length (chunked, as gunicorn passes it on) werkzeug stops reading at MAX_CONTENT_LENGTH:
    the cut JSON is refused as malformed (400), not 413 -- still refused, memory-bounded, and nothing changes."""
    big = json.dumps({"name": "x" * (2 * dm_config["max_body_bytes"]), "metric": "temperature",
                      "operator": "gt", "threshold": 1}).encode()
    before = snapshot(app)
    for path in ("/api/v1/rules", "/api/v1/devices", "/api/v1/auth/login"):
        resp = client.post(path, input_stream=io.BytesIO(big), environ_overrides={"wsgi.input_terminated": True},
                           headers={**auth["admin"], "Transfer-Encoding": "chunked",
                                    "Content-Type": "application/json"})
        assert resp.status_code in (400, 413), (path, resp.status_code)
        assert_error(resp, resp.status_code)
    assert snapshot(app) == before


def test_refused_writes_leave_no_trace_even_for_admins(app, client, auth, world):
    """Injection strings in write bodies are validation errors or stored literally; never executed."""
    before = snapshot(app)
    for attack in [a for a in ATTACKS if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", a)] + ["trailing-newline\n"]:
        for method, path, body in (
                ("POST", "/api/v1/devices", {"device_id": attack, "name": "n",
                                             "device_type_id": str(world["type_id"])}),
                ("POST", "/api/v1/device-types", {"name": attack}),
                ("PATCH", f"/api/v1/devices/{world['device_id']}", {"device_type": attack}),
                ("POST", "/api/v1/devices", {"device_id": "ok-id", "name": "n", "device_type": attack})):
            resp = client.open(path, method=method, headers=auth["admin"], json=body)
            assert resp.status_code in (400, 404, 409, 422), (path, attack, resp.status_code, resp.get_data()[:300])
            assert_error(resp, resp.status_code)
    assert snapshot(app) == before
    with db_of(app).transaction() as cur:
        cur.execute("SELECT to_regclass('public.devices') IS NOT NULL, to_regclass('public.users') IS NOT NULL")
        assert cur.fetchone() == (True, True)
