"""Device broker credentials: issue, rotate, revoke, show. Pure use cases over three ports (no Flask, DB or MQTT).

A device's broker identity is its device_id: the MQTT username of its password, the CN of its certificate. Secrets
are returned once and never stored here: the broker keeps its own salted hash of the password, the device keeps
its private key; the store keeps which credentials exist and their fingerprints.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from device_manager.service.errors import Conflict, Invalid, NotFound
from iothub.broker_acl import is_service_account

PASSWORD, CERTIFICATE = "password", "certificate"
KINDS = (PASSWORD, CERTIFICATE)


@dataclass(frozen=True)
class Credential:
    """What the store keeps of one credential."""

    kind: str
    fingerprint: str
    serial: int | None = None
    not_after: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Certificate:
    """A certificate the CA signed; key_pem only when the CA generated the key."""

    cert_pem: bytes
    key_pem: bytes | None
    serial: int
    fingerprint: str
    not_after: datetime


@dataclass(frozen=True)
class Request:
    """Which credentials to issue; a CSR makes the CA sign the device's own key instead of generating one."""

    password: bool = False
    certificate: bool = False
    csr_pem: bytes | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        """The credential kinds asked for."""
        return tuple(k for k, on in ((PASSWORD, self.password), (CERTIFICATE, self.certificate or self.csr_pem))
                     if on)


@dataclass
class Issued:
    """Secrets for one device, shown once."""

    device_id: str
    password: str | None = None
    certificate: Certificate | None = None
    credentials: list[Credential] = field(default_factory=list)


class CredentialStore(Protocol):
    """Which credentials each device has (PostgreSQL)."""

    def device_id(self, device_uuid) -> str | None:
        """The MQTT device_id of a device, None when unknown."""

    def device_ids(self, device_uuids: list) -> dict:
        """uuid -> device_id of the known ones."""

    def credentials(self, device_id: str) -> dict[str, Credential]:
        """kind -> credential."""

    def save(self, device_id: str, creds: list[Credential]) -> None:
        """Insert or replace credentials of a device."""

    def remove(self, device_id: str, kinds: tuple[str, ...]) -> None:
        """Forget credentials of a device."""

    def revoke_certificate(self, device_id: str, cred: Credential) -> list[int]:
        """Record a certificate as revoked; returns every revoked serial (for the CRL)."""


class BrokerAdmin(Protocol):
    """The broker's device accounts (Mosquitto dynsec)."""

    def ensure(self, passwords: dict[str, str | None]) -> None:
        """Create or update device accounts; None: no usable password (certificate only)."""

    def kick(self, device_id: str) -> None:
        """Disconnect the device's sessions now."""

    def delete(self, device_id: str) -> None:
        """Remove the device's account (disconnects it)."""

    def publish_crl(self, crl_pem: bytes) -> None:
        """Make the broker refuse the revoked certificates from now on."""


class CaSigner(Protocol):
    """The device CA."""

    def issue(self, device_id: str) -> Certificate:
        """A new key and client certificate with CN = device_id."""

    def sign_csr(self, device_id: str, csr_pem: bytes) -> Certificate:
        """A client certificate for the CSR's key with CN = device_id (Invalid when the CSR is bad)."""

    def crl(self, serials: list[int]) -> bytes:
        """A CRL listing the serials."""


def password_fingerprint(password: str) -> str:
    """What is kept of a password: tells two apart, useless to log in (it is 32 random bytes)."""
    return "sha256:" + hashlib.sha256(password.encode()).hexdigest()[:16]


class CredentialService:
    """The use cases."""

    def __init__(self, store: CredentialStore, broker: BrokerAdmin, ca: CaSigner, bulk_max: int):
        self.store, self.broker, self.ca, self.bulk_max = store, broker, ca, bulk_max

    def show(self, device_uuid) -> tuple[str, dict[str, Credential]]:
        """The device_id and its credentials (no secrets)."""
        device_id = self._device(device_uuid)
        return device_id, self.store.credentials(device_id)

    def issue(self, device_uuid, req: Request) -> Issued:
        """New credentials a device does not have yet (409 otherwise)."""
        device_id = self._device(device_uuid)
        present = self.store.credentials(device_id)
        taken = [k for k in req.kinds if k in present]
        if taken:
            raise Conflict(f"The device already has a {taken[0]}: rotate or revoke it")
        return self._issue_many({device_id: present}, req)[0]

    def issue_many(self, device_uuids: list, req: Request) -> list[Issued]:
        """Issue for up to bulk_max devices; existing credentials of those kinds are replaced."""
        if len(device_uuids) > self.bulk_max:
            raise Invalid(f"At most {self.bulk_max} devices per request",
                          {"json": {"devices": [f"Longer than {self.bulk_max}."]}})
        found = self.store.device_ids(device_uuids)
        missing = [str(u) for u in device_uuids if u not in found]
        if missing:
            raise NotFound(f"Unknown devices: {', '.join(missing[:5])}")
        for device_id in found.values():
            _refuse_service_account(device_id)
        present = {d: self.store.credentials(d) for d in found.values()}
        self._revoke_replaced(present, req)
        issued = self._issue_many(present, req)
        for device_id, have in present.items():
            if have:
                self.broker.kick(device_id)  # sessions opened with the replaced credentials end now
        return issued

    def rotate(self, device_uuid, req: Request) -> Issued:
        """Replace the named credentials: the old password stops working, the old certificate is revoked."""
        device_id = self._device(device_uuid)
        present = self.store.credentials(device_id)
        # The old certificate goes first: a failure then leaves no second valid certificate behind, and a retry
        # issues the new one.
        self._revoke_replaced({device_id: present}, req)
        issued = self._issue_many({device_id: present}, req)[0]
        self.broker.kick(device_id)  # sessions opened with the old credentials end now
        return issued

    def revoke(self, device_uuid, kinds: tuple[str, ...] = KINDS) -> None:
        """Revoke credentials: the device is disconnected at once and its next connect with them refused."""
        device_id = self._device(device_uuid)
        present = self.store.credentials(device_id)
        gone = [k for k in kinds if k in present]
        if not gone:
            raise NotFound("The device has no such credential")
        # The broker account goes (or its sessions end) before the CRL is published, so a CRL that cannot reach
        # the broker still leaves the device disconnected and a password login refused.
        if set(present) <= set(gone):
            self.broker.delete(device_id)
        else:
            if PASSWORD in gone:
                self.broker.ensure({device_id: None})  # its certificate stays valid; the password does not
            self.broker.kick(device_id)
        if CERTIFICATE in gone:
            self._revoke_certificate(device_id, present[CERTIFICATE])
        self.store.remove(device_id, tuple(gone))

    def forget(self, device_uuid) -> None:
        """Before a device is deleted: whatever credentials it has stop working (nothing to do when none)."""
        device_id = self.store.device_id(device_uuid)
        if device_id is not None and self.store.credentials(device_id):
            self.revoke(device_uuid)

    def _issue_many(self, present: dict[str, dict[str, Credential]], req: Request) -> list[Issued]:
        out, passwords = [], {}
        for device_id, have in present.items():
            issued = Issued(device_id)
            if req.password:
                issued.password = secrets.token_urlsafe(32)
                issued.credentials.append(Credential(PASSWORD, password_fingerprint(issued.password)))
            if CERTIFICATE in req.kinds:
                cert = self.ca.sign_csr(device_id, req.csr_pem) if req.csr_pem else self.ca.issue(device_id)
                issued.certificate = cert
                issued.credentials.append(Credential(CERTIFICATE, cert.fingerprint, cert.serial, cert.not_after))
            if issued.password is not None or PASSWORD not in have:
                passwords[device_id] = issued.password
            out.append(issued)
        if passwords:
            self.broker.ensure(passwords)
        for issued in out:
            self.store.save(issued.device_id, issued.credentials)
        return out

    def _revoke_replaced(self, present: dict[str, dict[str, Credential]], req: Request) -> None:
        """Revoke the certificates a request replaces (an unrevoked one would stay valid for its whole life): the
        revocations are recorded one by one, and the broker gets one CRL with all of them."""
        if CERTIFICATE not in req.kinds:
            return
        serials = None
        for device_id, have in present.items():
            if CERTIFICATE in have:
                serials = self.store.revoke_certificate(device_id, have[CERTIFICATE])  # every revoked serial so far
        if serials is not None:
            self.broker.publish_crl(self.ca.crl(serials))

    def _revoke_certificate(self, device_id: str, cred: Credential) -> None:
        self.broker.publish_crl(self.ca.crl(self.store.revoke_certificate(device_id, cred)))

    def _device(self, device_uuid) -> str:
        device_id = self.store.device_id(device_uuid)
        if device_id is None:
            raise NotFound("Device not found")
        _refuse_service_account(device_id)
        return device_id


def _refuse_service_account(device_id: str) -> None:
    """A device named like a broker service account never gets broker credentials (they would be that account's)."""
    if is_service_account(device_id):
        raise Conflict(f"{device_id!r} is reserved for the broker's service accounts")
