"""The device CA's certificate revocation list as a public document (brokers pull it: iothub.crl_sync).

Built from every recorded revocation and signed by the device CA; rebuilt only when a revocation was added, so a
fleet of brokers polling every few seconds costs one aggregate query each. The same revocations give the same
bytes (CRL Number = how many, times from the store, deterministic signature), so replicas agree on the ETag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from device_manager.service.errors import NotFound


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate."""

    serial: int
    revoked_at: datetime


@dataclass(frozen=True)
class Crl:
    """A rendered CRL and its strong validator."""

    pem: bytes
    etag: str  # sha256 of the PEM, unquoted


class RevocationStore(Protocol):
    """The revoked certificates (PostgreSQL revoked_certificates)."""

    def revocation_mark(self) -> tuple[int, datetime | None]:
        """(how many revocations, the newest one's time): changes with every revocation."""

    def revocations(self) -> list[Revocation]:
        """Every revoked certificate."""


class CrlSigner(Protocol):
    """The device CA."""

    @property
    def configured(self) -> bool:
        """True when a device CA (certificate and key) is configured."""

    def signed_crl(self, revoked: dict[int, datetime], *, number: int, this_update: datetime | None) -> bytes:
        """A CRL (PEM) of the serials with their revocation times; same inputs, same bytes."""


class CrlService:
    """The current CRL, cached per process until the next revocation."""

    def __init__(self, store: RevocationStore, ca: CrlSigner):
        self.store, self.ca = store, ca
        self._cached: tuple[tuple[int, datetime | None], Crl] | None = None

    def current(self) -> Crl:
        """The CRL listing every revocation recorded so far (NotFound when no device CA is configured)."""
        if not self.ca.configured:
            raise NotFound("No device CA is configured (DEVICE_CA_CERT_FILE, DEVICE_CA_KEY_FILE)",
                           code="no_device_ca")
        mark = self.store.revocation_mark()
        cached = self._cached
        if cached is not None and cached[0] == mark:
            return cached[1]
        # One read of the rows: the mark cached is the one of the rows signed, even under concurrent revocations.
        rows = self.store.revocations()
        newest = max((r.revoked_at for r in rows), default=None)
        pem = self.ca.signed_crl({r.serial: r.revoked_at for r in rows}, number=len(rows), this_update=newest)
        crl = Crl(pem, hashlib.sha256(pem).hexdigest())
        self._cached = ((len(rows), newest), crl)
        return crl
