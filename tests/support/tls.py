"""A per-run certificate authority (trustme) and a server certificate for 127.0.0.1/localhost, as PEM files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    """PEM paths: the CA clients verify against, and the server's certificate chain and key."""

    ca: str
    cert: str
    key: str

    def server_env(self) -> dict[str, str]:
        """The environment a service reads to serve HTTPS with this certificate."""
        return {"TLS_MODE": "on", "TLS_CERT_FILE": self.cert, "TLS_KEY_FILE": self.key}


def make_tls_files(directory: Path) -> TlsFiles:
    """A fresh CA and a server certificate it signed, written under `directory`."""
    ca = trustme.CA(organization_name="IoT Hub test CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(str(directory / "ca.crt"), str(directory / "server.crt"), str(directory / "server.key"))
    ca.cert_pem.write_to_path(files.ca)
    server.private_key_pem.write_to_path(files.key)
    with open(files.cert, "wb") as out:  # the chain: leaf first
        for blob in server.cert_chain_pems:
            out.write(blob.bytes())
    return files
