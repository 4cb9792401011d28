"""The CaSigner port on the device CA's certificate and key files (DEVICE_CA_CERT_FILE, DEVICE_CA_KEY_FILE)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from device_manager.service.credentials import Certificate
from device_manager.service.errors import Invalid
from iothub import pki


class FileCa:
    """Signs device client certificates (CN = device_id) and CRLs; the key is read once, at start."""

    def __init__(self, cert_path: str | None, key_path: str | None, *, days: int = 825):
        self.days = days
        self._signer = pki.Signer(Path(cert_path).read_bytes(), Path(key_path).read_bytes()) \
            if cert_path and key_path else None

    def _ca(self) -> pki.Signer:
        if self._signer is None:
            raise Invalid("No device CA is configured (DEVICE_CA_CERT_FILE, DEVICE_CA_KEY_FILE): issue passwords",
                          code="no_device_ca")
        return self._signer

    def issue(self, device_id: str) -> Certificate:
        """A new key and client certificate with CN = device_id."""
        return _cert(self._ca().client(device_id, self.days))

    def sign_csr(self, device_id: str, csr_pem: bytes) -> Certificate:
        """A client certificate for the CSR's key with CN = device_id (whatever CN the CSR asked for)."""
        try:
            return _cert(self._ca().client_from_csr(csr_pem, device_id, self.days))
        except ValueError as exc:
            raise Invalid(str(exc), {"json": {"csr": [str(exc)]}}) from None

    def crl(self, serials: list[int]) -> bytes:
        """A CRL listing the serials."""
        return self._ca().crl(serials)

    @property
    def configured(self) -> bool:
        """True when a device CA (certificate and key) is configured."""
        return self._signer is not None

    def signed_crl(self, revoked: dict[int, datetime], *, number: int, this_update: datetime | None) -> bytes:
        """A CRL of the serials with their revocation times; same inputs, same bytes."""
        # An empty one dates from the CA certificate, so it too is the same on every replica.
        ca = self._ca()
        return ca.crl(list(revoked), number=number, revoked_at=revoked,
                      this_update=this_update or ca.cert.not_valid_before_utc)


def _cert(issued: pki.Issued) -> Certificate:
    return Certificate(issued.cert_pem, issued.key_pem, issued.serial, issued.fingerprint, issued.not_after)
