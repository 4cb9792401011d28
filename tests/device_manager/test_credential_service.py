"""CredentialService against in-memory fakes of its ports: what reaches the broker and the CA for each use case
(the real broker's side is tests/security/test_device_credentials.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from device_manager.service.credentials import CERTIFICATE, PASSWORD, Certificate, CredentialService, Request
from device_manager.service.errors import Conflict, Invalid, NotFound


class _Store:
    def __init__(self, **devices):
        self.ids, self.creds, self.revoked = devices, {d: {} for d in devices.values()}, []

    def device_id(self, uuid):
        return self.ids.get(uuid)

    def device_ids(self, uuids):
        return {u: self.ids[u] for u in uuids if u in self.ids}

    def credentials(self, device_id):
        return dict(self.creds[device_id])

    def save(self, device_id, creds):
        self.creds[device_id].update({c.kind: c for c in creds})

    def remove(self, device_id, kinds):
        for k in kinds:
            self.creds[device_id].pop(k, None)

    def revoke_certificate(self, device_id, cred):
        self.revoked.append(cred.serial)
        return list(self.revoked)


class _Broker:
    def __init__(self):
        self.calls = []

    def ensure(self, passwords):
        self.calls.append(("ensure", dict(passwords)))

    def kick(self, device_id):
        self.calls.append(("kick", device_id))

    def delete(self, device_id):
        self.calls.append(("delete", device_id))

    def publish_crl(self, pem):
        self.calls.append(("crl", pem))


class _Ca:
    serial = 0

    def issue(self, device_id):
        self.serial += 1
        return Certificate(b"cert", b"key", self.serial, f"fp{self.serial}", datetime(2030, 1, 1, tzinfo=UTC))

    def sign_csr(self, device_id, csr):
        if csr != b"good":
            raise Invalid("bad csr")
        return Certificate(b"cert", None, 99, "fp99", datetime(2030, 1, 1, tzinfo=UTC))

    def crl(self, serials):
        return f"crl{serials}".encode()


@pytest.fixture
def svc():
    return CredentialService(_Store(u1="dev-1", u2="dev-2"), _Broker(), _Ca(), bulk_max=2)


def test_issue_sends_the_password_to_the_broker_and_keeps_only_a_fingerprint(svc):
    issued = svc.issue("u1", Request(password=True))
    assert svc.broker.calls == [("ensure", {"dev-1": issued.password})]
    stored = svc.store.creds["dev-1"][PASSWORD]
    assert stored.fingerprint.startswith("sha256:") and issued.password not in stored.fingerprint
    with pytest.raises(Conflict):
        svc.issue("u1", Request(password=True))


def test_a_certificate_alone_makes_an_account_without_a_password(svc):
    svc.issue("u1", Request(certificate=True))
    assert svc.broker.calls == [("ensure", {"dev-1": None})]
    svc.broker.calls.clear()
    svc.issue("u1", Request(password=True))  # added later: the account gets it
    assert svc.broker.calls[0][0] == "ensure" and svc.broker.calls[0][1]["dev-1"]


def test_revoking_one_kind_keeps_the_other_and_kicks(svc):
    svc.issue("u1", Request(password=True, certificate=True))
    svc.broker.calls.clear()
    svc.revoke("u1", (CERTIFICATE,))
    # Sessions end before the CRL goes out: a CRL that cannot reach the broker still leaves the device disconnected.
    assert svc.broker.calls == [("kick", "dev-1"), ("crl", b"crl[1]")]
    assert set(svc.store.creds["dev-1"]) == {PASSWORD}
    svc.broker.calls.clear()
    svc.revoke("u1", (PASSWORD,))
    assert svc.broker.calls == [("delete", "dev-1")]  # nothing left: the account goes
    with pytest.raises(NotFound):
        svc.revoke("u1")


def test_rotating_a_certificate_revokes_the_old_one(svc):
    svc.issue("u1", Request(certificate=True))
    svc.rotate("u1", Request(certificate=True))
    assert svc.store.revoked == [1] and svc.store.creds["dev-1"][CERTIFICATE].serial == 2
    assert svc.broker.calls[-1] == ("kick", "dev-1")


def test_bad_input_and_unknown_devices(svc):
    with pytest.raises(Invalid):
        svc.issue("u1", Request(csr_pem=b"bad"))
    with pytest.raises(NotFound):
        svc.issue("nope", Request(password=True))
    with pytest.raises(NotFound):
        svc.issue_many(["u1", "nope"], Request(password=True))
    with pytest.raises(Invalid):
        svc.issue_many(["u1", "u2", "u1"], Request(password=True))
    svc.forget("u2")  # nothing issued: nothing to do
    assert svc.broker.calls == []


def test_a_device_named_like_a_service_account_gets_no_broker_credentials(svc):
    svc.store.ids["u9"] = "iothub-admin"  # registered before names were reserved
    svc.store.creds["iothub-admin"] = {}
    with pytest.raises(Conflict):
        svc.issue("u9", Request(password=True))
    with pytest.raises(Conflict):
        svc.issue_many(["u9"], Request(password=True))
    assert svc.broker.calls == []
