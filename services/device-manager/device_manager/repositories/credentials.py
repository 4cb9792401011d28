"""PostgreSQL store of which broker credentials a device has (device_credentials, revoked_certificates)."""

from __future__ import annotations

from device_manager.service.credentials import Credential
from device_manager.service.crl import Revocation
from iothub.db import Database


class PostgresCredentials:
    """The CredentialStore and RevocationStore ports on PostgreSQL."""

    def __init__(self, db: Database):
        self.db = db

    def device_id(self, device_uuid) -> str | None:
        """The MQTT device_id of a device, None when unknown."""
        with self.db.transaction() as cur:
            cur.execute("SELECT device_id FROM devices WHERE id = %s", (str(device_uuid),))
            row = cur.fetchone()
        return row[0] if row else None

    def device_ids(self, device_uuids: list) -> dict:
        """uuid -> device_id of the known ones."""
        with self.db.transaction() as cur:
            cur.execute("SELECT id, device_id FROM devices WHERE id = ANY(%s::uuid[])",
                        ([str(u) for u in device_uuids],))
            found = {str(u): d for u, d in cur.fetchall()}
        return {u: found[str(u)] for u in device_uuids if str(u) in found}

    def credentials(self, device_id: str) -> dict[str, Credential]:
        """kind -> credential."""
        with self.db.transaction() as cur:
            cur.execute("SELECT kind, fingerprint, serial, not_after, created_at FROM device_credentials "
                        "WHERE device_id = %s", (device_id,))
            rows = cur.fetchall()
        return {r[0]: Credential(r[0], r[1], int(r[2]) if r[2] is not None else None, r[3], r[4]) for r in rows}

    def save(self, device_id: str, creds: list[Credential]) -> None:
        """Insert or replace credentials of a device."""
        with self.db.transaction() as cur:
            for c in creds:
                cur.execute("""INSERT INTO device_credentials (device_id, kind, fingerprint, serial, not_after)
                               VALUES (%s, %s, %s, %s, %s)
                               ON CONFLICT (device_id, kind) DO UPDATE
                               SET fingerprint = EXCLUDED.fingerprint, serial = EXCLUDED.serial,
                                   not_after = EXCLUDED.not_after, created_at = now()""",
                            (device_id, c.kind, c.fingerprint, c.serial, c.not_after))

    def remove(self, device_id: str, kinds: tuple[str, ...]) -> None:
        """Forget credentials of a device."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM device_credentials WHERE device_id = %s AND kind = ANY(%s)",
                        (device_id, list(kinds)))

    def revoke_certificate(self, device_id: str, cred: Credential) -> list[int]:
        """Record a certificate as revoked; returns every revoked serial (for the CRL)."""
        with self.db.transaction() as cur:
            cur.execute("""INSERT INTO revoked_certificates (serial, device_id, fingerprint) VALUES (%s, %s, %s)
                           ON CONFLICT (serial) DO NOTHING""", (cred.serial, device_id, cred.fingerprint))
            cur.execute("SELECT serial FROM revoked_certificates ORDER BY serial")
            return [int(r[0]) for r in cur.fetchall()]

    def revocation_mark(self) -> tuple[int, object]:
        """(how many revocations, the newest one's time): changes with every revocation."""
        with self.db.read() as cur:
            cur.execute("SELECT count(*), max(revoked_at) FROM revoked_certificates")
            count, newest = cur.fetchone()
        return int(count), newest

    def revocations(self) -> list[Revocation]:
        """Every revoked certificate."""
        with self.db.read() as cur:
            cur.execute("SELECT serial, revoked_at FROM revoked_certificates ORDER BY serial")
            return [Revocation(int(s), t) for s, t in cur.fetchall()]
