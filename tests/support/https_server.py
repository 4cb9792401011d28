"""A WSGI app (the device manager, or a test's own) served over HTTPS with the run's certificate, in a thread."""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator

from werkzeug.serving import make_server

from tests.support.procs import free_port
from tests.support.tls import TlsFiles


@contextlib.contextmanager
def serve_https(app, tls_files: TlsFiles) -> Iterator[str]:
    """Serve `app` on a free loopback port until the block ends; yields its base URL (https://127.0.0.1:port)."""
    port = free_port()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tls_files.cert, tls_files.key)
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=tls)
    thread = threading.Thread(target=server.serve_forever, name=f"https-{port}", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.shutdown()
