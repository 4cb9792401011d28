"""Metering end to end: a simulator fleet (DC and AC meters) through the real collector and rule engine; derived
power and energy then appear in the telemetry API, an overload rule's events and the exports."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from collector.metering import energy
from tests.device_manager.conftest import app, auth, dm_config, make_app, tokens, users  # noqa: F401 -- fixtures
from tests.e2e.test_spec_fleet import _run_fleet
from tests.support.poll import wait_for
from tests.support.queues import purge_all
from tests.support.services import running_platform

pytestmark = pytest.mark.slow
DEVICES, SAMPLING_S = 4, 0.2


def _power_series(db, device_id) -> list[energy.Sample]:
    """power_active as the series writer stored it (each instant once, however often it was delivered)."""
    with db.transaction() as cur:
        cur.execute("""SELECT DISTINCT extract(epoch FROM m.ts)::double precision, m.val FROM telemetry t
                       CROSS JOIN LATERAL jsonb_to_recordset(t.measurements) AS m(ts timestamptz, type text,
                                                                                  val double precision)
                       WHERE t.device_id = %s AND m.type = 'power_active' ORDER BY 1""", (device_id,))
        return [energy.Sample(datetime.fromtimestamp(t, UTC).timestamp(), p) for t, p in cur.fetchall()]


def _buckets(db, device_id) -> tuple[float, float, int]:
    with db.transaction() as cur:
        cur.execute("SELECT coalesce(sum(consumed_wh), 0), coalesce(sum(covered_s), 0), coalesce(sum(samples), 0) "
                    "FROM energy_buckets WHERE device_id = %s", (device_id,))
        return cur.fetchone()


def test_fleet_power_and_energy_through_the_stack(platform_env, db, pg_dsn, amqp_url, app, auth, tmp_path,  # noqa: F811
                                                 uid):
    prefix = f"met{uid}"
    sim_args = ("--devices", str(DEVICES), "--id-prefix", prefix, "--type-mix", "power_meter_dc:1,power_meter_ac:1",
                "--sampling-interval", str(SAMPLING_S), "--send-interval", "1", "--duplicate-rate", "0.05",
                "--reboot-rate", "0.02", "--seed", "13", "--metrics-port", "0")
    subprocess.run([sys.executable, "-m", "simulator", "provision", *sim_args, "--database-url", pg_dsn], check=True,
                   capture_output=True, timeout=60, env={**os.environ, "IOTHUB_ENV": "development"})
    with db.transaction() as cur:  # overload: AC meters draw 2.2-5 MW, DC meters at most 0.32 MW
        cur.execute("INSERT INTO rules (name, scope, metric, operator, threshold, for_seconds, severity) "
                    "VALUES (%s, 'all', 'power_active', 'gt', 2000000, 3, 'critical') RETURNING id",
                    (f"overload-{uid}",))
        rule_id = cur.fetchone()[0]
    purge_all(amqp_url)
    env = {**platform_env, "METERING_SAMPLE_INTERVAL_S": str(SAMPLING_S)}
    with running_platform(env, tmp_path):
        _run_fleet(sim_args, tmp_path / "ledger.csv", env, tmp_path)
        with db.transaction() as cur:
            cur.execute("SELECT d.id, d.device_id, t.name FROM devices d JOIN device_types t ON t.id = d.device_type_id"
                        " WHERE d.device_id LIKE %s ORDER BY 2", (f"{prefix}-%",))
            devices = cur.fetchall()
        assert {t for _, _, t in devices} == {"power_meter_dc", "power_meter_ac"}
        for _, device_id, _ in devices:
            # Energy equals the trapezoid over the stored power series (gaps from reboots left out).
            def settled(device_id=device_id):
                series = _power_series(db, device_id)
                got = _buckets(db, device_id)
                return series and got[2] == len(series) and (series, got)

            series, (consumed, covered, _) = wait_for(settled, timeout=60, what=f"energy of {device_id}")
            want = energy.total(energy.plan([], series, 300, 3 * SAMPLING_S).segments)
            assert consumed == pytest.approx(want.consumed_wh, rel=1e-9) and consumed > 0
            assert covered == pytest.approx(want.covered_s, rel=1e-9)

        def overloads():
            with db.transaction() as cur:
                cur.execute("SELECT DISTINCT device_id FROM events WHERE rule_id = %s", (rule_id,))
                return {r[0] for r in cur.fetchall()}

        ac = {d for _, d, t in devices if t == "power_meter_ac"}
        assert wait_for(lambda: overloads() >= ac and overloads(), timeout=30, what="overload events") == ac
    _check_api(app.test_client(), auth, devices)


def _check_api(client, headers, devices) -> None:
    """Telemetry API, energy API and exports show the derived values."""
    h = headers["viewer"]
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=2)
    rng = {"start": start.isoformat(), "end": end.isoformat()}
    for pk, _, kind in devices:
        body = client.get(f"/api/v1/devices/{pk}/telemetry?{urlencode({**rng, 'metric': 'power_active'})}",
                          headers=h).get_json()
        [series] = body["series"]
        assert series["unit"] == "W" and len(series["points"]) > 10
        body = client.get(f"/api/v1/devices/{pk}/energy?{urlencode(rng)}", headers=h).get_json()
        assert body["total"]["consumed"] > 0 and 0 < body["total"]["coverage"] < 1
        if kind == "power_meter_ac":
            assert body["total"]["apparent"] > body["total"]["consumed"] > 0 and body["total"]["reactive"] > 0
    pk = devices[0][0]
    text = client.get(f"/api/v1/exports/telemetry?{urlencode({**rng, 'device_id': pk})}", headers=h).get_data(
        as_text=True)
    metrics = {row["metric"] for row in csv.DictReader(io.StringIO(text))}
    assert "power_active" in metrics and len(metrics) >= 3
    energy_csv = client.get(f"/api/v1/exports/energy?{urlencode({**rng, 'device_type': devices[0][2]})}",
                            headers=h).get_data(as_text=True)
    assert {row["device_id"] for row in csv.DictReader(io.StringIO(energy_csv))} == {
        d for _, d, t in devices if t == devices[0][2]}
