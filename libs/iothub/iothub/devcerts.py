"""Development PKI: `python -m iothub.devcerts DIR` creates, where absent, the server CA, the server certificate and
the device CA (with an empty CRL) that `make run` and the tests use. Never for production (docs/security.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from iothub import pki

# Every name a local, Compose or Kubernetes client uses to reach a TLS server of the platform.
SERVER_HOSTS = ["localhost", "127.0.0.1", "::1", "mosquitto", "device-manager", "collector-edge", "collector-ingest",
                "mosquitto.iothub.svc", "mosquitto.iothub.svc.cluster.local", "device-manager.iothub.svc",
                "device-manager.iothub.svc.cluster.local", "collector-ingest.iothub.svc",
                "collector-ingest.iothub.svc.cluster.local"]


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)


def ensure(directory: Path, hosts: list[str] | None = None) -> list[str]:
    """Create the missing files under `directory`; returns the names written (empty when all existed)."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    if not (directory / "ca.crt").exists() or not (directory / "ca.key").exists():
        ca = pki.make_ca("IoT Hub development server CA")
        _write(directory / "ca.crt", ca.cert_pem)
        _write(directory / "ca.key", ca.key_pem, private=True)
        written += ["ca.crt", "ca.key"]
        (directory / "server.crt").unlink(missing_ok=True)  # signed by the old CA
    if not (directory / "server.crt").exists() or not (directory / "server.key").exists():
        signer = pki.Signer((directory / "ca.crt").read_bytes(), (directory / "ca.key").read_bytes())
        server = signer.server("localhost", hosts or SERVER_HOSTS)
        _write(directory / "server.crt", server.cert_pem)
        _write(directory / "server.key", server.key_pem, private=True)
        written += ["server.crt", "server.key"]
    if not (directory / "device-ca.crt").exists() or not (directory / "device-ca.key").exists():
        device_ca = pki.make_ca("IoT Hub development device CA")
        _write(directory / "device-ca.crt", device_ca.cert_pem)
        _write(directory / "device-ca.key", device_ca.key_pem, private=True)
        written += ["device-ca.crt", "device-ca.key"]
        (directory / "device-ca.crl").unlink(missing_ok=True)
    if not (directory / "device-ca.crl").exists():
        signer = pki.Signer((directory / "device-ca.crt").read_bytes(), (directory / "device-ca.key").read_bytes())
        _write(directory / "device-ca.crl", signer.crl([]))
        written.append("device-ca.crl")
    # Mosquitto may run as its own user in development; it must read the server key.
    return written


def main(argv: list[str] | None = None) -> None:
    """Command line: DIR (default .run/certs)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", nargs="?", default=".run/certs")
    ns = parser.parse_args(argv)
    written = ensure(Path(ns.directory))
    print(f"{ns.directory}: {'created ' + ', '.join(written) if written else 'certificates already present'}")


if __name__ == "__main__":
    main()
