"""How every IoT Hub MQTT client reaches the broker: TLS 1.2+ verified against a CA, and its credentials."""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class MqttAuth:
    """TLS trust and client identity of one MQTT client (no CA = plain TCP, development only)."""

    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    cert_file: str | None = None  # client certificate (the client-certificate listener)
    key_file: str | None = None

    def apply(self, client) -> None:
        """Configure a paho client before connecting."""
        if self.ca_file:
            client.tls_set_context(self.context())
        if self.username:
            client.username_pw_set(self.username, self.password)

    def context(self) -> ssl.SSLContext:
        """A client TLS context: the broker's certificate checked against the CA and the host name, TLS >= 1.2."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx
