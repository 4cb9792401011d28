"""Device broker credentials through the API, against the real Mosquitto: issued secrets work once and only for
their device, GET never shows a secret, rotate and revoke take effect at once (disconnect, refused reconnect)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from iothub import pki
from tests.device_manager.conftest import assert_error
from tests.support import mqtt as test_mqtt
from tests.support.mqtt_probe import Probe
from tests.support.poll import wait_for

REFUSED = (0x86, 0x87)


@pytest.fixture
def login(mqtt_broker, probes, tmp_path):
    """login(issued, cert=False) -> a Probe connected with the secrets an API response returned."""

    def connect(issued: dict, *, cert: bool = False, password: str | None = None) -> Probe:
        if cert:
            (tmp_path / "d.crt").write_text(issued["certificate"])
            (tmp_path / "d.key").write_text(issued["private_key"])
            auth = test_mqtt.auth(None, cert_file=str(tmp_path / "d.crt"), key_file=str(tmp_path / "d.key"))
            probe = Probe(mqtt_broker.cert_port, auth)
        else:
            probe = Probe(mqtt_broker.port, test_mqtt.auth((issued["username"], password or issued["password"])))
        probes.append(probe.connect())
        return probe

    return connect


def _path(device) -> str:
    return f"/api/v1/devices/{device['id']}/credentials"


def test_password_is_returned_once_and_logs_the_device_in(client, auth, device, login):
    r = client.post(_path(device), headers=auth["operator"], json={"password": True})
    assert r.status_code == 201, r.get_json()
    issued = r.get_json()
    assert issued["username"] == device["device_id"] and len(issued["password"]) >= 32
    probe = login(issued)
    assert probe.accepted
    assert not probe.publish(f"iot/{device['device_id']}/telemetry").is_failure
    assert probe.publish("iot/someone-else/telemetry").value == 0x87
    view = client.get(_path(device), headers=auth["viewer"]).get_json()
    assert [c["kind"] for c in view["credentials"]] == ["password"]
    assert issued["password"] not in str(view) and view["credentials"][0]["fingerprint"].startswith("sha256:")
    again = client.post(_path(device), headers=auth["operator"], json={"password": True})
    assert_error(again, 409, "conflict")


def test_certificate_with_generated_key_or_csr_has_the_device_as_cn(client, auth, device, login):
    issued = client.post(_path(device), headers=auth["operator"], json={"certificate": True}).get_json()
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == device["device_id"]
    probe = login(issued, cert=True)
    assert probe.accepted
    assert probe.subscribe(f"iot/{device['device_id']}/command")[0].value == 1
    # A CSR: the device keeps its key; whatever CN it asks for, the certificate names the device.
    key = pki.new_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone-else")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    rotated = client.post(_path(device) + "/rotate", headers=auth["operator"], json={"csr": csr}).get_json()
    assert rotated["private_key"] is None
    signed = x509.load_pem_x509_certificate(rotated["certificate"].encode())
    assert signed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == device["device_id"]
    assert signed.public_key() == key.public_key()
    bad = client.post(_path(device) + "/rotate", headers=auth["operator"], json={"csr": "not a csr"})
    assert_error(bad, 422)


def test_revoking_disconnects_now_and_refuses_the_next_connect(client, auth, device, login):
    issued = client.post(_path(device), headers=auth["operator"], json={"password": True, "certificate": True})
    issued = issued.get_json()
    by_password, by_cert = login(issued), login(issued, cert=True)
    assert by_password.accepted and by_cert.accepted
    assert client.delete(_path(device), headers=auth["operator"]).status_code == 204
    wait_for(lambda: by_password.disconnects and by_cert.disconnects, what="both sessions dropped")
    by_password.client.loop_stop()
    by_cert.client.loop_stop()
    assert login(issued).connack.value in REFUSED
    assert not login(issued, cert=True).accepted  # the CRL: refused at the TLS handshake
    assert client.get(_path(device), headers=auth["viewer"]).get_json()["credentials"] == []
    assert_error(client.delete(_path(device), headers=auth["operator"]), 404)


def test_revoking_the_password_keeps_the_certificate(client, auth, device, login):
    issued = client.post(_path(device), headers=auth["operator"], json={"password": True, "certificate": True})
    issued = issued.get_json()
    assert client.delete(_path(device) + "?kind=password", headers=auth["operator"]).status_code == 204
    assert login(issued).connack.value in REFUSED
    assert login(issued, cert=True).accepted


def test_rotating_the_password_ends_the_old_one(client, auth, device, login):
    first = client.post(_path(device), headers=auth["operator"], json={"password": True}).get_json()
    old = login(first)
    second = client.post(_path(device) + "/rotate", headers=auth["operator"], json={"password": True}).get_json()
    wait_for(lambda: old.disconnects, what="the old session dropped")
    old.client.loop_stop()
    assert second["password"] != first["password"]
    assert login(first).connack.value in REFUSED
    assert login(second).accepted


def test_bulk_issue_gives_each_device_its_own_password(client, auth, app, device_type, uid, login):
    rows = client.post("/api/v1/devices/bulk", headers=auth["operator"], json={"devices": [
        {"device_id": f"bulk-{uid}-{i}", "name": "b", "device_type_id": device_type["id"]} for i in range(3)]})
    ids = [d["id"] for d in rows.get_json()["items"]]
    r = client.post("/api/v1/devices/credentials/bulk", headers=auth["operator"], json={"devices": ids,
                                                                                          "password": True})
    assert r.status_code == 201, r.get_json()
    items = r.get_json()["items"]
    assert len({i["password"] for i in items}) == 3
    probe = login(items[1])
    assert probe.accepted
    assert probe.publish(f"iot/{items[0]['device_id']}/telemetry").value == 0x87


def test_roles_and_errors(client, auth, device, uid):
    assert_error(client.post(_path(device), headers=auth["viewer"], json={"password": True}), 403)
    assert client.get(_path(device), headers=auth["viewer"]).status_code == 200
    assert_error(client.get(_path(device)), 401)
    assert_error(client.post(_path(device), headers=auth["operator"], json={}), 422)
    missing = "/api/v1/devices/00000000-0000-0000-0000-000000000000/credentials"
    assert_error(client.post(missing, headers=auth["operator"], json={"password": True}), 404)
    assert_error(client.post("/api/v1/devices/credentials/bulk", headers=auth["operator"],
                             json={"devices": [device["id"]], "csr": "x", "password": True}), 422)


def test_deleting_a_device_revokes_its_broker_credentials(client, auth, device, login):
    issued = client.post(_path(device), headers=auth["operator"], json={"password": True}).get_json()
    live = login(issued)
    assert client.delete(f"/api/v1/devices/{device['id']}", headers=auth["operator"]).status_code == 204
    wait_for(lambda: live.disconnects, what="the deleted device's session dropped")
    live.client.loop_stop()
    assert login(issued).connack.value in REFUSED


def test_provisioning_issues_credentials_with_the_device_single_and_bulk(client, auth, device_type, uid, login):
    one = client.post("/api/v1/devices", headers=auth["operator"], json={
        "device_id": f"prov-{uid}", "name": "p", "device_type_id": device_type["id"],
        "credentials": {"password": True, "certificate": True}})
    assert one.status_code == 201, one.get_json()
    issued = one.get_json()["credentials"]
    assert login(issued).accepted and login(issued, cert=True).accepted
    fetched = client.get(f"/api/v1/devices/{one.get_json()['id']}", headers=auth["viewer"]).get_json()
    assert "credentials" not in fetched  # the secrets were in the creating response only
    bulk = client.post("/api/v1/devices/bulk", headers=auth["operator"], json={"devices": [
        {"device_id": f"prov-{uid}-a", "name": "a", "device_type_id": device_type["id"],
         "credentials": {"password": True}},
        {"device_id": f"prov-{uid}-b", "name": "b", "device_type_id": device_type["id"]},
        {"device_id": f"prov-{uid}-c", "name": "c", "device_type_id": device_type["id"],
         "credentials": {"certificate": True}}]})
    assert bulk.status_code == 201, bulk.get_json()
    a, b, c = bulk.get_json()["items"]
    assert a["credentials"]["password"] and a["credentials"]["certificate"] is None
    assert "credentials" not in b
    assert c["credentials"]["password"] is None and c["credentials"]["certificate"].startswith("-----BEGIN")
    assert login(a["credentials"]).accepted and login(c["credentials"], cert=True).accepted


@pytest.mark.parametrize("name", ["iothub-admin", "iothub-bridge", "iothub-anything"])
def test_a_device_cannot_take_a_service_accounts_name(client, auth, device_type, name):
    r = client.post("/api/v1/devices", headers=auth["operator"], json={
        "device_id": name, "name": "x", "device_type_id": device_type["id"], "credentials": {"password": True}})
    assert_error(r, 422)
    assert "reserved" in r.get_json()["error"]["details"]["json"]["device_id"][0]
    bulk = client.post("/api/v1/devices/bulk", headers=auth["operator"], json={"devices": [
        {"device_id": f"ok-{name}", "name": "x", "device_type_id": device_type["id"]},
        {"device_id": name, "name": "x", "device_type_id": device_type["id"]}]})
    assert_error(bulk, 422)
    assert list(bulk.get_json()["error"]["details"]["json"]["devices"]) == ["1"]
    assert client.get(f"/api/v1/devices?device_id=ok-{name}", headers=auth["viewer"]).get_json()["total"] == 0


def test_bulk_reissue_revokes_the_certificates_it_replaces(client, auth, device, login):
    first = client.post(_path(device), headers=auth["operator"], json={"certificate": True}).get_json()
    live = login(first, cert=True)
    assert live.accepted
    r = client.post("/api/v1/devices/credentials/bulk", headers=auth["operator"],
                    json={"devices": [device["id"]], "certificate": True})
    assert r.status_code == 201, r.get_json()
    wait_for(lambda: live.disconnects, what="the replaced certificate's session dropped")
    live.client.loop_stop()
    assert not login(first, cert=True).accepted  # the CRL: refused at the TLS handshake
    assert login(r.get_json()["items"][0], cert=True).accepted


@pytest.mark.parametrize("weak", [
    pytest.param(lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 - the point
                 id="rsa-1024"),
    pytest.param(lambda: ec.generate_private_key(ec.SECP256K1()), id="secp256k1"),
])
def test_a_csr_with_a_weak_or_unsupported_key_is_refused(client, auth, device, weak):
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device["device_id"])]))
           .sign(weak(), hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    resp = client.post(_path(device), headers=auth["operator"], json={"csr": csr})
    assert_error(resp, 422)
    assert "CSR" in resp.get_json()["error"]["message"]
    assert client.get(_path(device), headers=auth["operator"]).get_json()["credentials"] == []  # nothing issued
