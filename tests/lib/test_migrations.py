"""The schema applies and is idempotent."""

from iothub.db import migrate


def test_migrations_are_idempotent(pg_dsn, db):
    assert migrate.apply(pg_dsn) == 0
    with db.transaction() as cur:
        cur.execute("SELECT name FROM device_types ORDER BY name")
        assert [r[0] for r in cur.fetchall()] == ["power_meter_ac", "power_meter_dc"]
        cur.execute("SELECT count(*) FROM rules WHERE kind <> 'threshold'")
        assert cur.fetchone()[0] == 4
