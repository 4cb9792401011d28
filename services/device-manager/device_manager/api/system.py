"""Unversioned operational endpoints (/healthz, /readyz, /metrics) and the local Swagger UI page."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for
from prometheus_client import CONTENT_TYPE_LATEST

from device_manager import metrics
from device_manager.extensions import services

bp = Blueprint("system", __name__)

_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IoT Hub API</title>
<link rel="stylesheet" href="{css}"></head>
<body><div id="swagger-ui"></div>
<script src="{js}"></script>
<script>window.ui = SwaggerUIBundle({{url: "{spec}", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout", persistAuthorization: true}});</script>
</body></html>"""


@bp.get("/healthz")
def healthz():
    """Alive: the process answers."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready: every dependency check (database, MQTT broker, ...) passes; 503 otherwise."""
    results = {}
    for name, check in services().checks.items():
        try:
            results[name] = bool(check())
        except Exception:  # a failing probe means "not ready", never a crashed endpoint
            results[name] = False
    ok = all(results.values())
    return jsonify({"ready": ok, "checks": results}), 200 if ok else 503


@bp.get("/metrics")
def prometheus():
    """Prometheus exposition, refreshing the pool gauges first."""
    db = services().db
    metrics.DB_POOL_IN_USE.set(db.in_use)
    metrics.DB_POOL_SIZE.set(db.size)
    return Response(metrics.exposition(services().settings.prometheus_multiproc_dir), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/api/v1/docs")
def docs():
    """Swagger UI served from the app's own static files (no CDN)."""
    page = _DOCS_PAGE.format(css=url_for("static", filename="swagger-ui/swagger-ui.css"),
                             js=url_for("static", filename="swagger-ui/swagger-ui-bundle.js"),
                             spec=url_for("api-docs.openapi_json"))
    return Response(page, mimetype="text/html")
