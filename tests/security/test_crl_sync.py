"""Certificate revocation reaching a broker by itself: the device manager serves the device CA's CRL (public,
ETag/304) and the CRL sync (python -m iothub.crl_sync, a real process) installs it for a real Mosquitto; a CRL the
device CA did not sign, garbage, an older or an expired one is never installed."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import pytest
import requests
from cryptography import x509
from werkzeug.wrappers import Request, Response

from iothub import pki
from tests.support import mqtt as test_mqtt
from tests.support import procs
from tests.support.https_server import serve_https
from tests.support.mqtt_probe import Probe
from tests.support.poll import wait_for
from tests.support.services import ServiceProcess

CRL_PATH = "/api/v1/pki/device-ca.crl"


@pytest.fixture(scope="module")
def crl_broker(tmp_path_factory):
    """A Mosquitto of this module's own, reading its own CRL file (the sync writes it, not the device manager)."""
    workdir = tmp_path_factory.mktemp("crl-mosquitto")
    broker = procs.mosquitto(workdir, crl_dir=workdir / "crl").start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def pull_app(make_app, crl_broker):
    """A device manager with pull distribution: no CRL file, no pidfile."""
    return make_app(mqtt_port=crl_broker.port, device_ca_crl_distribution="pull", device_ca_crl=None,
                    mqtt_broker_pidfile=None)


@pytest.fixture(scope="module")
def served(pull_app, tls_files):
    """The pull app over HTTPS."""
    with serve_https(pull_app, tls_files) as url:
        yield url


@pytest.fixture
def sync(crl_broker, tls_files, tmp_path):
    """sync(url, crl_file) -> a running CRL sync process signalling crl_broker; all stopped after the test."""
    started = []

    def start(url: str, crl_file) -> ServiceProcess:
        env = {**os.environ, "IOTHUB_ENV": "production", "CRL_SYNC_URL": url, "CRL_SYNC_FILE": str(crl_file),
               "CRL_SYNC_TLS_CA": tls_files.ca, "DEVICE_CA_CERT_FILE": str(crl_broker.certs / "device-ca.crt"),
               "CRL_SYNC_INTERVAL_S": "0.2", "CRL_SYNC_MAX_BACKOFF_S": "0.4",
               "MQTT_BROKER_PIDFILE": str(crl_broker.workdir / "mosquitto.pid")}
        port = procs.free_port()
        env["CRL_SYNC_HEALTH_PORT"] = str(port)
        proc = ServiceProcess(f"crl-sync-{len(started)}", [sys.executable, "-m", "iothub.crl_sync"], env, tmp_path,
                              metrics_port=port)
        started.append(proc.start())  # waits for its /healthz
        return proc

    yield start
    for proc in started:
        proc.stop()


def _ready(proc: ServiceProcess) -> int:
    return requests.get(f"http://127.0.0.1:{proc.metrics_port}/readyz", timeout=2).status_code


def _cert_probe(broker, issued: dict, directory, probes) -> Probe:
    name = issued["device_id"]
    (directory / f"{name}.crt").write_text(issued["certificate"])
    (directory / f"{name}.key").write_text(issued["private_key"])
    auth = test_mqtt.auth(None, cert_file=str(directory / f"{name}.crt"), key_file=str(directory / f"{name}.key"))
    probe = Probe(broker.cert_port, auth).connect()
    probes.append(probe)
    return probe


def _device(app, uid: str, suffix: str, type_id) -> dict:
    with app.extensions["device_manager"].db.transaction(dict_rows=True) as cur:
        cur.execute("INSERT INTO devices (device_id, name, device_type_id) VALUES (%s, %s, %s) RETURNING *",
                    (f"crl-{uid}-{suffix}", "crl", type_id))
        return cur.fetchone()


def test_a_revoked_certificate_is_refused_at_the_handshake_once_synced(pull_app, served, sync, crl_broker, auth,
                                                                       device_type, uid, tmp_path, probes):
    client = pull_app.test_client()
    issued = {}
    for name in ("revoked", "kept"):
        dev = _device(pull_app, uid, name, device_type["id"])
        r = client.post(f"/api/v1/devices/{dev['id']}/credentials", headers=auth["operator"],
                        json={"certificate": True})
        assert r.status_code == 201, r.get_json()
        issued[name] = (dev, r.get_json())
    proc = sync(served + CRL_PATH, crl_broker.workdir / "crl" / "device-ca.crl")
    wait_for(lambda: _ready(proc) == 200, what="the first sync")
    assert _cert_probe(crl_broker, issued["revoked"][1], tmp_path, probes).accepted
    revoked = issued["revoked"][0]
    assert client.delete(f"/api/v1/devices/{revoked['id']}/credentials?kind=certificate",
                         headers=auth["operator"]).status_code == 204
    wait_for(lambda: not _cert_probe(crl_broker, issued["revoked"][1], tmp_path, probes).accepted, timeout=20,
             what="the revoked certificate refused at the handshake")
    assert _cert_probe(crl_broker, issued["kept"][1], tmp_path, probes).accepted
    assert proc.stop() == 0, proc.log_tail()  # SIGTERM: a clean exit


def _crl_server(state: dict):
    """A stand-in device manager serving state["pem"] with an ETag; counts requests."""

    @Request.application
    def app(request):
        state["requests"] += 1
        response = Response(state["pem"], mimetype="application/x-pem-file")
        response.add_etag()
        return response.make_conditional(request)

    return app


def test_only_a_newer_crl_signed_by_the_device_ca_is_installed(sync, crl_broker, tls_files, tmp_path):
    device_ca = pki.Signer((crl_broker.certs / "device-ca.crt").read_bytes(),
                           (crl_broker.certs / "device-ca.key").read_bytes())
    impostor_ca = pki.make_ca("IoT Hub development device CA")  # the same name, another key
    impostor = pki.Signer(impostor_ca.cert_pem, impostor_ca.key_pem)
    state = {"pem": impostor.crl([], number=99), "requests": 0}
    target = tmp_path / "device-ca.crl"
    first = device_ca.crl([])  # the bootstrap file: no CRL number
    target.write_bytes(first)
    with serve_https(_crl_server(state), tls_files) as url:
        proc = sync(url, target)
        wait_for(lambda: "not signed by the device CA" in proc.log_tail(), what="the impostor's CRL refused")
        assert target.read_bytes() == first and _ready(proc) == 503
        state["pem"] = b"not a CRL at all"
        wait_for(lambda: "not a PEM CRL" in proc.log_tail(), what="garbage refused")
        newer = device_ca.crl([12345], number=5)
        state["pem"] = newer
        wait_for(lambda: target.read_bytes() == newer, what="the device CA's newer CRL installed")
        seen = state["requests"]
        wait_for(lambda: state["requests"] >= seen + 3, what="three more polls")
        assert proc.log_tail(20000).count("broker signalled to reread the CRL") == 1  # 304s: no more SIGHUPs
        state["pem"] = device_ca.crl([], number=4)  # a replayed older CRL would un-revoke 12345
        wait_for(lambda: "older than the installed one" in proc.log_tail(), what="the older CRL refused")
        expired = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
        state["pem"] = device_ca.crl([12345], days=1, number=9, this_update=expired)  # the broker would refuse all
        wait_for(lambda: "expired at" in proc.log_tail(), what="the expired CRL refused")
        assert target.read_bytes() == newer
        assert proc.stop() == 0


def test_the_crl_endpoint_is_public_conditional_and_the_same_on_every_replica(pull_app, make_app, crl_broker, auth,
                                                                              device, uid):
    client = pull_app.test_client()
    r = client.get(CRL_PATH)  # no token
    assert r.status_code == 200 and r.mimetype == "application/x-pem-file"
    assert r.headers["Cache-Control"] == "no-cache"
    etag, weak = r.get_etag()
    assert etag and not weak
    crl = x509.load_pem_x509_crl(r.data)
    ca = x509.load_pem_x509_certificate((crl_broker.certs / "device-ca.crt").read_bytes())
    assert crl.is_signature_valid(ca.public_key())
    again = client.get(CRL_PATH, headers={"If-None-Match": f'"{etag}"'})
    assert again.status_code == 304 and again.data == b""
    replica = make_app(mqtt_port=crl_broker.port, device_ca_crl_distribution="pull")
    assert replica.test_client().get(CRL_PATH).get_etag() == (etag, False)  # one document, whichever replica
    issued = client.post(f"/api/v1/devices/{device['id']}/credentials", headers=auth["operator"],
                         json={"certificate": True}).get_json()
    serial = int(issued["credentials"][0]["serial"])
    assert client.delete(f"/api/v1/devices/{device['id']}/credentials", headers=auth["operator"]).status_code == 204
    after = client.get(CRL_PATH, headers={"If-None-Match": f'"{etag}"'})  # at once: no cache to expire
    assert after.status_code == 200 and after.get_etag()[0] != etag
    assert x509.load_pem_x509_crl(after.data).get_revoked_certificate_by_serial_number(serial) is not None


def test_the_distribution_and_the_sync_refuse_settings_that_would_lose_revocations():
    from device_manager.settings import load as load_dm
    from iothub.crl_sync.settings import load as load_sync
    from iothub.settings import Env, SettingsError

    dev = {"IOTHUB_ENV": "development", "TLS_MODE": "off", "COMMAND_KEY_KEK": "33" * 32}
    assert load_dm(Env(dev)).device_ca_crl_distribution == "pull"  # no CRL file, no pidfile needed
    with pytest.raises(SettingsError, match="DEVICE_CA_CRL_FILE"):
        load_dm(Env({**dev, "DEVICE_CA_CRL_DISTRIBUTION": "file"}))
    with pytest.raises(SettingsError, match="pull or file"):
        load_dm(Env({**dev, "DEVICE_CA_CRL_DISTRIBUTION": "push"}))
    sync = {"CRL_SYNC_URL": "http://device-manager:8080/api/v1/pki/device-ca.crl", "CRL_SYNC_FILE": "/x.crl",
            "DEVICE_CA_CERT_FILE": "/ca.crt"}
    assert load_sync(Env({**sync, "IOTHUB_ENV": "development"})).interval_s == 2.0
    with pytest.raises(SettingsError, match="https"):  # a CRL's signature is checked, but not its freshness
        load_sync(Env(sync))
    with pytest.raises(SettingsError, match="CRL_SYNC_INTERVAL_S"):
        load_sync(Env({**sync, "IOTHUB_ENV": "development", "CRL_SYNC_INTERVAL_S": "0"}))


def test_without_a_pidfile_the_broker_is_the_one_process_of_its_name(tmp_path, uid):
    import shutil
    import signal
    import subprocess

    from iothub.crl_sync import broker

    name = f"brk{uid}"[:15]  # /proc/PID/comm keeps 15 characters
    binary = tmp_path / name
    shutil.copy(shutil.which("sleep"), binary)
    # SIGHUP back to its default action: a runner started under nohup hands its children an ignored SIGHUP.
    argv = ["env", "--default-signal=HUP", str(binary), "60"]
    proc = subprocess.Popen(argv)
    other = subprocess.Popen(argv)
    try:  # until exec, a child still carries our name
        wait_for(lambda: all(Path(f"/proc/{p.pid}/comm").read_text().strip() == name for p in (proc, other)),
                 what="both children exec'd")
        with pytest.raises(broker.BrokerNotFound, match="2 processes"):  # not ours to guess: signal none
            broker.reload(None, name)
        other.kill()
        other.wait()
        assert broker.find_pid(None, name) == proc.pid
        assert broker.reload(None, name) == proc.pid
        assert proc.wait(10) == -signal.SIGHUP  # sleep has no handler: SIGHUP ends it, so it was delivered
        with pytest.raises(broker.BrokerNotFound, match="0 processes"):
            broker.find_pid(None, name)
    finally:
        for p in (proc, other):
            p.kill()
            p.wait()


def test_a_crl_that_could_not_be_written_is_fetched_again_and_installed(sync, crl_broker, tls_files, tmp_path):
    device_ca = pki.Signer((crl_broker.certs / "device-ca.crt").read_bytes(),
                           (crl_broker.certs / "device-ca.key").read_bytes())
    state = {"pem": device_ca.crl([777], number=3), "requests": 0}
    target = tmp_path / "not-yet" / "device-ca.crl"  # its directory is missing: the write fails
    with serve_https(_crl_server(state), tls_files) as url:
        proc = sync(url, target)
        wait_for(lambda: "CRL not synced" in proc.log_tail(), what="the failed write logged")
        target.parent.mkdir()
        # The served ETag is unchanged, so only a sync that did not keep it after the failure installs the CRL.
        wait_for(lambda: target.exists() and target.read_bytes() == state["pem"], timeout=20,
                 what="the same CRL installed once it can be written")
        assert proc.stop() == 0
