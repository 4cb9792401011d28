"""`make run`'s development certificates (python -m iothub.devcerts): a CA and a server certificate it signed for the
loopback names, made once and then left alone (clients keep trusting the CA they were given)."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

from cryptography import x509


def test_dev_certs_make_a_chain_for_loopback_once(tmp_path):
    target = tmp_path / "certs"
    subprocess.run([sys.executable, "-m", "iothub.devcerts", str(target)], check=True, timeout=60)
    ca = x509.load_pem_x509_certificate((target / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((target / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert (target / "server.key").stat().st_mode & 0o077 == 0, "the private key is readable by others"
    before = (target / "server.crt").read_bytes()
    subprocess.run([sys.executable, "-m", "iothub.devcerts", str(target)], check=True, timeout=60)
    assert (target / "server.crt").read_bytes() == before
