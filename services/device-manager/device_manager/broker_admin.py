"""The BrokerAdmin port on Mosquitto: device accounts over the dynsec control topic; the CRL pulled by the brokers
(GET /api/v1/pki/device-ca.crl, nothing to push) or, on one machine, a file plus SIGHUP."""

from __future__ import annotations

import logging
import os
import secrets
import signal
from pathlib import Path

from iothub import dynsec
from iothub.errors import Unavailable
from iothub.mqtt_tls import MqttAuth

log = logging.getLogger("device_manager.credentials")
EXISTS = "already exists"


class DynsecBroker:
    """One short admin connection per operation (gunicorn workers share nothing); CRL written atomically."""

    def __init__(self, host: str, port: int, auth: MqttAuth, *, prefix: str = "", crl_pull: bool = True,
                 crl_path: str | None = None, pidfile: str | None = None):
        self.host, self.port, self.auth, self.prefixes = host, port, auth, (prefix,)
        self.crl_pull, self.crl_path, self.pidfile = crl_pull, crl_path, pidfile

    def _run(self, commands: list[dict], tolerate: tuple[str, ...] = ()) -> list[dict]:
        try:
            admin = dynsec.Dynsec(self.host, self.port, self.auth)
            try:
                return admin.run(commands, tolerate=tolerate)
            finally:
                admin.close()
        except (dynsec.DynsecError, OSError) as exc:  # the API answers 503: retry later
            raise Unavailable(f"MQTT broker admin: {exc}") from exc

    def ensure(self, passwords: dict[str, str | None]) -> None:
        """Create device accounts; an existing one gets the new password (None: a random one nobody knows)."""
        commands = [c for d, pw in passwords.items() for c in dynsec.create_device(d, pw, self.prefixes)]
        replies = self._run(commands, tolerate=(EXISTS,))
        existing = [c["username"] for c, r in zip(commands, replies, strict=True)
                    if c["command"] == "createClient" and EXISTS in r.get("error", "")]
        if existing:
            self._run([dynsec.set_password(d, passwords[d] or secrets.token_urlsafe(32)) for d in existing])

    def kick(self, device_id: str) -> None:
        """Disconnect the device's sessions (dynsec drops a client's connections when it is disabled)."""
        self._run([dynsec.disable_client(device_id), dynsec.enable_client(device_id)])

    def delete(self, device_id: str) -> None:
        """Remove the device's account and role (its connections drop at once)."""
        self._run(dynsec.delete_device(device_id), tolerate=("not found",))

    def publish_crl(self, crl_pem: bytes) -> None:
        """Write the CRL where Mosquitto reads it and SIGHUP it; nothing when brokers pull it from the endpoint."""
        if self.crl_pull:
            return
        if not self.crl_path:
            raise Unavailable("DEVICE_CA_CRL_FILE is not set: certificate revocation cannot reach the broker")
        path = Path(self.crl_path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(crl_pem)
            tmp.replace(path)
            if self.pidfile:
                os.kill(int(Path(self.pidfile).read_text().strip()), signal.SIGHUP)
        except (OSError, ValueError) as exc:  # unwritable CRL, no pidfile, broker gone: the API answers 503
            raise Unavailable(f"CRL not delivered to the broker: {exc}") from exc
        if not self.pidfile:
            log.warning("CRL written; no MQTT_BROKER_PIDFILE, the deployment reloads the broker")
