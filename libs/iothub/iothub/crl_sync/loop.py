"""The poll loop: conditional GET, check, atomic install, SIGHUP on change, backoff on errors."""

from __future__ import annotations

import logging
import os
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509

from iothub.crl_sync import broker
from iothub.crl_sync.settings import Settings
from iothub.crl_sync.verify import Refused, check

log = logging.getLogger("iothub.crl_sync")
MAX_BYTES = 64 * 1024 * 1024  # a CRL of a few hundred thousand serials; more is not a CRL of ours


class FetchError(Exception):
    """The device manager did not answer with a CRL."""


class CrlSync:
    """Keeps one broker's CRL file equal to the served CRL."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.path = Path(settings.crl_file)
        self.ca = x509.load_pem_x509_certificate(Path(settings.device_ca_cert).read_bytes())
        self.tls = ssl.create_default_context(cafile=settings.tls_ca)
        self.etag: str | None = None
        # Installed but not yet signalled. True at start: a previous run may have died between writing and signalling.
        self.reload_pending = True
        self._fetched: str | None = None  # the ETag of the body being installed; it becomes `etag` once on disk
        self.synced = threading.Event()  # the last poll succeeded (readiness)

    def fetch(self) -> bytes | None:
        """The served CRL, None when it is the one we fetched last (304)."""
        headers = {"If-None-Match": self.etag} if self.etag else {}
        req = urllib.request.Request(self.s.url, headers=headers)  # noqa: S310 - settings allow https/http only
        try:
            with urllib.request.urlopen(req, timeout=self.s.timeout_s, context=self.tls) as resp:  # noqa: S310
                body = resp.read(MAX_BYTES + 1)
                etag = resp.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None
            raise FetchError(f"HTTP {exc.code} from {self.s.url}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FetchError(f"{self.s.url}: {getattr(exc, 'reason', exc)}") from None
        if len(body) > MAX_BYTES:
            raise FetchError(f"more than {MAX_BYTES} bytes from {self.s.url}")
        self._fetched = etag
        return body

    def install(self, pem: bytes) -> bool:
        """Write the CRL when it differs from the file and may replace it (Refused otherwise); True when written."""
        installed = self.path.read_bytes() if self.path.exists() else None
        if pem == installed:
            return False
        crl = check(pem, self.ca, installed)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        os.chmod(tmp, 0o644)  # a public document; the broker may run as another user
        tmp.replace(self.path)
        log.info("CRL installed", extra={"crl_file": str(self.path), "revoked": len(crl),
                                          "last_update": crl.last_update_utc.isoformat()})
        return True

    def step(self) -> None:
        """One poll: fetch, install when new, signal the broker when the file changed (or a signal is owed)."""
        pem = self.fetch()
        if pem is not None:
            # Only an installed CRL's ETag is sent again: a refusal or a failed write fetches the CRL next poll.
            self.reload_pending |= self.install(pem)
            self.etag = self._fetched
        if self.reload_pending:
            pid = broker.reload(self.s.broker_pidfile, self.s.broker_process)
            self.reload_pending = False
            log.info("broker signalled to reread the CRL", extra={"pid": pid})

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; errors are logged and retried with a doubling wait, never raised."""
        failures = 0
        while not stop.is_set():
            try:
                self.step()
                failures = 0
                self.synced.set()
            except (FetchError, Refused, broker.BrokerNotFound, OSError) as exc:
                failures += 1
                self.synced.clear()
                log.warning("CRL not synced", extra={"error": str(exc), "kind": type(exc).__name__,
                                                     "failures": failures})
            except Exception:  # a bug must not stop revocations reaching the broker for good: retry
                failures += 1
                self.synced.clear()
                log.exception("CRL sync failed", extra={"failures": failures})
            delay = self.s.interval_s if not failures else min(self.s.interval_s * 2 ** failures,
                                                               self.s.max_backoff_s)
            stop.wait(delay)
