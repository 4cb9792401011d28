"""The login limit is shared through Redis by every worker and pod, and counts the client's address as the trusted
proxies report it: X-Forwarded-For is believed only for TRUSTED_PROXY_HOPS proxies (none by default)."""

from __future__ import annotations

import requests

from tests.device_manager.conftest import REDIS_URL, assert_error
from tests.device_manager.test_gunicorn import gunicorn, production_env


def _login(base: str, email: str, **headers: str) -> requests.Response:
    return requests.post(f"{base}/api/v1/auth/login", json={"email": email, "password": "wrong-password"},
                         headers=headers, timeout=30)


def test_limit_holds_across_two_pods_sharing_redis(pg_dsn, mqtt_broker, amqp_url, tls_files, tmp_path, uid,
                                                   monkeypatch):
    import redis

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files.ca)
    env = production_env(pg_dsn, mqtt_broker, amqp_url, tls_files, uid, LOGIN_RATE_LIMIT="3 per minute")
    email = f"two-pods-{uid}@example.test"
    with gunicorn(env, tmp_path / "a.log", workers=1) as a, gunicorn(env, tmp_path / "b.log", workers=1) as b:
        assert [_login(base, email).status_code for base in (a, b, a)] == [401, 401, 401]
        # Each pod saw at most two attempts: only the shared count reaches the limit.
        assert _login(b, email).status_code == 429
        # A forged X-Forwarded-For changes nothing when no proxy is trusted (TRUSTED_PROXY_HOPS=0).
        assert _login(a, email, **{"X-Forwarded-For": "203.0.113.77"}).status_code == 429
    stored = redis.Redis.from_url(REDIS_URL).keys(f"*/iothub-test-{uid}/{email}|*")
    assert stored, "the limiter kept its counts somewhere other than Redis"


def test_forwarded_for_counts_only_behind_trusted_proxies(make_app, uid):
    proxy = {"REMOTE_ADDR": "10.0.0.5"}  # every request arrives from the ingress

    def attempts(client, email: str, forwarded: list[str]) -> list[int]:
        return [client.post("/api/v1/auth/login", json={"email": email, "password": "wrong-password"},
                            headers={"X-Forwarded-For": f}, environ_base=proxy).status_code for f in forwarded]

    direct = make_app(LOGIN_RATE_LIMIT="2 per minute").test_client()
    # No trusted proxy: a client rotating X-Forwarded-For is still one address.
    assert attempts(direct, f"hops0-{uid}@example.test", ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) == \
        [401, 401, 429]
    behind = make_app(LOGIN_RATE_LIMIT="2 per minute", trusted_proxy_hops=1).test_client()
    email = f"hops1-{uid}@example.test"
    # One trusted hop: the address the ingress appended is the client's, so each client has its own budget...
    assert attempts(behind, email, ["198.51.100.1", "198.51.100.1", "198.51.100.1"]) == [401, 401, 429]
    assert attempts(behind, email, ["198.51.100.2"]) == [401]
    # ...and a value the client forged in front of it is not the one counted.
    denied = behind.post("/api/v1/auth/login", json={"email": email, "password": "wrong-password"},
                         headers={"X-Forwarded-For": "192.0.2.66, 198.51.100.1"}, environ_base=proxy)
    assert_error(denied, 429, "rate_limited")


def test_an_unreachable_redis_leaves_each_process_its_own_limit(make_app, uid):
    from tests.support.procs import free_port

    cut_off = make_app(LOGIN_RATE_LIMIT="2 per minute", ratelimit_storage_uri=f"redis://127.0.0.1:{free_port()}/0")
    client = cut_off.test_client()
    email = f"no-redis-{uid}@example.test"
    codes = [client.post("/api/v1/auth/login", json={"email": email, "password": "wrong-password"}).status_code
             for _ in range(3)]
    assert codes == [401, 401, 429]  # still limited, never a 500
