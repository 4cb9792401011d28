"""Register the simulated fleet in PostgreSQL so the collector knows every device."""

from __future__ import annotations

import psycopg2
import psycopg2.extras

from iothub.command_keys import Kek, parse_kek
from simulator import credentials
from simulator.keys import device_key
from simulator.settings import Settings
from simulator.values import type_for_index

INSERT = """
INSERT INTO devices (device_id, name, serial_number, device_type_id, fw_version, metadata)
SELECT v.device_id, v.name, v.serial, dt.id, v.fw, '{"simulated": true}'::jsonb
FROM (VALUES %s) AS v(device_id, name, serial, type_name, fw)
JOIN device_types dt ON dt.name = v.type_name
ON CONFLICT (device_id) DO NOTHING
"""
# The fleet's derived command keys, stored as the device manager stores its own; a device keeps the key it has (a key
# rotated through the API is not followed by `run`: that simulated device then rejects commands, as it should).
KEYS = """
INSERT INTO device_command_keys (device_id, wrapped_key)
SELECT d.id, v.wrapped FROM (VALUES %s) AS v(device_id, wrapped) JOIN devices d ON d.device_id = v.device_id
ON CONFLICT (device_id) DO NOTHING
"""


def rows(s: Settings) -> list[tuple[str, str, str, str, str]]:
    """(device_id, name, serial, device type, fw) of every fleet member."""
    out = []
    for index in range(s.start_index, s.start_index + s.devices):
        device_id = s.device_id(index)
        out.append((device_id, f"Simulated {device_id}", f"SIM-{device_id}", type_for_index(index, s.type_mix),
                    s.fw_version))
    return out


def provision(s: Settings, page_size: int = 1000) -> int:
    """Insert the fleet's devices (existing ids are kept); returns how many rows were new."""
    conn = psycopg2.connect(s.database_url, application_name="iothub-simulator")
    try:
        with conn, conn.cursor() as cur:
            missing = {name for _, _, _, name, _ in rows(s)} - _known_types(cur)
            if missing:
                raise RuntimeError(f"device types missing from the database: {', '.join(sorted(missing))}")
            inserted = 0
            data = rows(s)
            for start in range(0, len(data), page_size):
                psycopg2.extras.execute_values(cur, INSERT, data[start:start + page_size], page_size=page_size)
                inserted += cur.rowcount
            if s.credentials_file:
                credentials.issue(s, [r[0] for r in data], cur)
            if s.command_key_seed:
                _store_keys(cur, s, [r[0] for r in data], page_size)
        return inserted
    finally:
        conn.close()


def _known_types(cur) -> set[str]:
    cur.execute("SELECT name FROM device_types")
    return {r[0] for r in cur.fetchall()}


def _store_keys(cur, s: Settings, device_ids: list[str], page_size: int) -> None:
    kek = Kek(parse_kek(s.command_key_kek or ""))
    for start in range(0, len(device_ids), page_size):
        page = [(i, kek.wrap(i, device_key(s.command_key_seed, i))) for i in device_ids[start:start + page_size]]
        psycopg2.extras.execute_values(cur, KEYS, page, template="(%s, %s::bytea)", page_size=page_size)
