"""Broker credentials of the simulated fleet: each meter gets its own MQTT password at provisioning.

Issued through Mosquitto's dynsec control API with the admin account (MQTT_ADMIN_USERNAME/MQTT_ADMIN_PASSWORD), kept
in SIM_CREDENTIALS_FILE (0600, never committed) for `simulator run --connection-mode per-device`, and recorded in
PostgreSQL's device_credentials (which credential exists and its fingerprint, never the secret) like the API does.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import orjson

from iothub import dynsec
from simulator.settings import Settings

RECORD = """
INSERT INTO device_credentials (device_id, kind, fingerprint)
VALUES (%s, 'password', %s)
ON CONFLICT (device_id, kind) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, created_at = now()
"""


def fingerprint(password: str) -> str:
    """What PostgreSQL keeps of an issued password: enough to tell two apart, useless to log in."""
    return "sha256:" + hashlib.sha256(password.encode()).hexdigest()[:16]


def issue(s: Settings, device_ids: list[str], cur) -> int:
    """Give every device without a password in the file a fresh one; returns how many were issued."""
    path = Path(s.credentials_file)
    known: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
    missing = [d for d in device_ids if d not in known]
    if not missing:
        return 0
    fresh = {d: secrets.token_urlsafe(24) for d in missing}
    host, port = s.brokers[0]
    admin = dynsec.Dynsec(host, port, s.admin_auth)
    try:
        commands = [c for d, pw in fresh.items() for c in dynsec.create_device(d, pw, (s.topic_prefix,))]
        # A device issued before whose file entry was lost keeps its client: only its password changes.
        replies = admin.run(commands, tolerate=("already exists",))
        retry = [dynsec.set_password(d, fresh[d]) for d, reply in zip(fresh, replies[1::2], strict=True)
                 if "already exists" in reply.get("error", "")]
        if retry:
            admin.run(retry)
    finally:
        admin.close()
    for device_id, password in fresh.items():
        cur.execute(RECORD, (device_id, fingerprint(password)))
    known.update(fresh)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(known))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return len(fresh)
