"""The schema applies and is idempotent."""

from iothub.db import migrate


def test_migrations_are_idempotent(pg_dsn, db):
    assert migrate.apply(pg_dsn) == 0
    with db.transaction() as cur:
        # Other tests add rows to the run's database; the seeded reference rows must be there exactly once.
        cur.execute("SELECT name FROM device_types WHERE name LIKE 'power_meter_%' ORDER BY name")
        assert [r[0] for r in cur.fetchall()] == ["power_meter_ac", "power_meter_dc"]
        cur.execute("SELECT kind FROM rules WHERE kind <> 'threshold' AND scope = 'all' AND created_by IS NULL "
                    "ORDER BY kind")
        assert [r[0] for r in cur.fetchall()] == ["command_timeout", "offline", "ota_failed", "redundancy", "seq_gap"]
