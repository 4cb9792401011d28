"""One error format for every failure, body limits, content types, health, metrics, OpenAPI and the docs page."""

from __future__ import annotations

import re

import pytest

from tests.device_manager.conftest import assert_error
from tests.support.poll import wait_for


def test_unknown_route_is_404_json(client, auth):
    assert_error(client.get("/api/v1/nothing-here", headers=auth["admin"]), 404, "not_found")


def test_wrong_method_is_405_json(client, auth):
    err = client.put("/api/v1/devices", headers=auth["admin"], json={})
    assert_error(err, 405, "method_not_allowed")
    assert "GET" in err.headers["Allow"]


@pytest.mark.parametrize("path", ["/api/v1/devices/not-a-uuid", "/api/v1/device-types/123",
                                  "/api/v1/users/zzz", "/api/v1/commands/1234", "/api/v1/ota/rollouts/x"])
def test_malformed_uuid_in_path_is_404(client, auth, path):
    assert_error(client.get(path, headers=auth["admin"]), 404, "not_found")


def test_malformed_json_is_400(client, auth):
    r = client.post("/api/v1/devices", headers=auth["operator"], data='{"device_id": ', content_type="application/json")
    assert_error(r, 400, "bad_request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_body_is_415(client, auth, content_type):
    r = client.post("/api/v1/devices", headers=auth["operator"], data="device_id=x", content_type=content_type)
    assert_error(r, 415, "unsupported_media_type")


def test_body_over_limit_is_413(client, auth):
    big = '{"name": "' + "x" * (1024 * 1024 + 10) + '"}'
    r = client.post("/api/v1/devices", headers=auth["operator"], data=big, content_type="application/json")
    assert_error(r, 413, "payload_too_large")


def test_unknown_body_field_is_422_with_field_details(client, auth, device_type, uid):
    r = client.post("/api/v1/devices", headers=auth["operator"],
                    json={"device_id": f"u-{uid}", "name": "x", "device_type_id": str(device_type["id"]), "colour": 1})
    err = assert_error(r, 422, "validation_error")
    assert err["details"] == {"json": {"colour": ["Unknown field."]}}


def test_unknown_query_parameter_is_422(client, auth):
    err = assert_error(client.get("/api/v1/devices?colour=red", headers=auth["viewer"]), 422, "validation_error")
    assert "colour" in err["details"]["query"]


@pytest.mark.parametrize("query", ["page=0", "page=abc", "page_size=0", "page_size=101", "sort=colour", "sort=-"])
def test_bad_pagination_and_sort_are_422(client, auth, query):
    assert_error(client.get(f"/api/v1/devices?{query}", headers=auth["viewer"]), 422, "validation_error")


def test_unexpected_exception_is_500_without_trace(make_app, auth):
    app = make_app()

    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("secret internals")

    r = app.test_client().get("/api/v1/boom")
    err = assert_error(r, 500, "internal_error")
    assert "secret" not in r.get_data(as_text=True) and "Traceback" not in r.get_data(as_text=True)
    assert err["message"] == "Internal server error"


def test_dependencies_down_are_503(make_app, auth):
    broken = make_app(database_url="postgresql://postgres@127.0.0.1:1/none",
                      amqp_url="amqp://guest:guest@127.0.0.1:1/%2F").test_client()
    assert_error(broken.get("/api/v1/devices", headers=auth["viewer"]), 503, "unavailable")
    ready = broken.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"] is False and ready.get_json()["checks"]["amqp"] is False


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    # the MQTT connection starts lazily (after a gunicorn fork), so readiness may take a moment
    r = wait_for(lambda: (resp := client.get("/readyz")).status_code == 200 and resp, what="readyz 200")
    assert r.get_json()["checks"] == {"database": True, "mqtt": True, "amqp": True}


def test_metrics_count_requests_by_route(client, auth):
    client.get("/api/v1/device-types", headers=auth["viewer"])
    text = client.get("/metrics").get_data(as_text=True)
    assert 'iothub_api_requests_total{method="GET",route="/api/v1/device-types",status="200"}' in text
    assert "iothub_api_request_duration_seconds_bucket" in text
    assert "iothub_api_db_pool_in_use" in text


def test_openapi_documents_every_route_and_security(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    documented = set(spec["paths"])
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if path.startswith("/api/v1/") and "static" not in path and path not in ("/api/v1/docs",
                                                                                "/api/v1/openapi.json"):
            openapi_path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
            assert openapi_path in documented, path
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert login["security"] == []
    assert "Error" in spec["components"]["schemas"]


def test_docs_page_uses_local_assets_only(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    for asset in ("/api/v1/static/swagger-ui/swagger-ui-bundle.js", "/api/v1/static/swagger-ui/swagger-ui.css"):
        assert asset in html
        r = client.get(asset)
        assert r.status_code == 200 and len(r.data) > 100_000
        r.close()


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/device-types?q=a%00b", None),
    ("/api/v1/devices?q=%F3%94%A7%B2%00", None),
    ("/api/v1/devices", '{"device_id": "ok", "name": "a\\u0000b", "device_type": "x"}'),
    ("/api/v1/devices", '{"device_id": "ok", "name": "\\udb54", "device_type": "x"}'),
    ("/api/v1/devices", '{"device_id": "ok", "name": "n", "device_type": "x", "metadata": {"k\\u0000": 1}}'),
])
def test_text_postgres_cannot_store_is_422(client, auth, path, body):
    if body is None:
        r = client.get(path, headers=auth["operator"])
    else:
        r = client.post(path, headers=auth["operator"], data=body, content_type="application/json")
    assert_error(r, 422, "validation_error")
