"""Public PKI documents at /api/v1/pki: the device CA's CRL, which brokers pull (python -m iothub.crl_sync).

A CRL is public and signed, so no token: a broker's sidecar holds no API credentials. Strong ETag and
Cache-Control: no-cache, so each poll is a conditional GET that costs a 304 until the next revocation.
"""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from device_manager.auth.roles import error_responses
from device_manager.extensions import services

blp = Blueprint("pki", __name__, url_prefix="/api/v1/pki", description="Public PKI documents (no authentication)")
PEM = "application/x-pem-file"
_ETAG = {"ETag": {"description": "Strong validator of this CRL", "schema": {"type": "string"}}}
_DOC = {
    "security": [],
    "responses": {
        "200": {"description": "The device CA's CRL (PEM), listing every revoked device certificate",
                "headers": _ETAG, "content": {PEM: {"schema": {"type": "string"}}}},
        "304": {"description": "If-None-Match named the current ETag: the caller's CRL is current",
                "headers": _ETAG},
        **error_responses(r404="No device CA is configured"),
    },
}


@blp.route("/device-ca.crl", methods=["GET"])
@blp.doc(**_DOC)
def device_ca_crl():
    """The device CA's current CRL: reflects a revocation at once. Conditional GET with If-None-Match."""
    crl = services().crl.current()
    response = Response(crl.pem, mimetype=PEM)
    response.set_etag(crl.etag)
    response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)
