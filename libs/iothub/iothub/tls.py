"""Server-side TLS for the services' HTTPS listeners: one context recipe (TLS 1.2 at least) for every server."""

from __future__ import annotations

import ssl

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context with the certificate chain and key, refusing anything older than TLS 1.2."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MINIMUM_VERSION
    context.load_cert_chain(cert_file, key_file)
    return context
