"""Energy API: hand-computed hourly, daily and fleet energy with coverage, register readings, bounds and roles."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest

from tests.device_manager.conftest import assert_error
from tests.device_manager.energy_data import dc_samples, hour_ago

H = timedelta(hours=1)


@pytest.fixture
def metered(app, db, device, device_type, uid):
    """360 kW for the first hour from h0 and the second half of the next one (a 30 min gap); a second device of
    the type at 180 kW for the first hour only."""
    h0 = hour_ago(30)
    name = device_type["name"]
    dc_samples(db, device["device_id"], name, h0, [*range(3601), *range(5400, 7201)], volts=1000.0, amps=360.0)
    with db.transaction() as cur:
        cur.execute("INSERT INTO devices (device_id, name, device_type_id) VALUES (%s, %s, %s)",
                    (f"dev2-{uid}", "second", device_type["id"]))
    dc_samples(db, f"dev2-{uid}", name, h0, range(3601), volts=1000.0, amps=180.0)
    return h0


def get(client, auth, url, role="viewer", **params):
    return client.get(f"{url}?{urlencode(params)}", headers=auth[role])


def _iso(t):
    return t.isoformat().replace("+00:00", "Z")


def test_device_energy_by_hour_with_coverage(client, auth, device, metered):
    h0 = metered
    resp = get(client, auth, f"/api/v1/devices/{device['id']}/energy", start=_iso(h0), end=_iso(h0 + 3 * H))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["device_id"], body["unit"], body["units"]) == (
        device["device_id"], "kWh", {"active": "kWh", "apparent": "kVAh", "reactive": "kvarh"})
    got = [(i["start"], i["consumed"], i["coverage"]) for i in body["intervals"]]
    assert got == [(_iso(h0), pytest.approx(360.0), 1.0), (_iso(h0 + H), pytest.approx(180.0), 0.5),
                   (_iso(h0 + 2 * H), 0.0, 0.0)]
    assert body["total"]["consumed"] == pytest.approx(540.0)
    assert body["total"]["coverage"] == pytest.approx(0.5)
    assert body["total"]["regenerated"] == 0.0 and body["total"]["net"] == pytest.approx(540.0)


def test_day_resolution_and_watt_hours(client, auth, device, metered):
    h0 = metered
    body = get(client, auth, f"/api/v1/devices/{device['id']}/energy", start=_iso(h0), end=_iso(h0 + 3 * H),
               resolution="day", unit="Wh").get_json()
    assert sum(i["consumed"] for i in body["intervals"]) == pytest.approx(540_000.0)
    assert body["intervals"][0]["start"] == _iso(h0) and body["intervals"][-1]["end"] == _iso(h0 + 3 * H)


def test_fleet_energy_of_a_device_type(client, auth, device_type, metered):
    h0 = metered
    body = get(client, auth, "/api/v1/energy", device_type=device_type["name"], start=_iso(h0),
               end=_iso(h0 + 2 * H)).get_json()
    assert body["devices"] == 2
    assert [i["consumed"] for i in body["intervals"]] == [pytest.approx(540.0), pytest.approx(180.0)]
    assert [i["coverage"] for i in body["intervals"]] == [1.0, 0.25]
    assert_error(get(client, auth, "/api/v1/energy", device_type="no-such-type"), 404)


def test_register_readings_at_any_instant(client, auth, device, metered):
    h0, url = metered, f"/api/v1/devices/{device['id']}/energy/register"
    cases = [(h0 - H, None, 0.0), (h0 + timedelta(seconds=1800), h0 + timedelta(seconds=1800), 180.0),
             (h0 + timedelta(seconds=1800.5), h0 + timedelta(seconds=1800), 180.0),
             (h0 + timedelta(seconds=4000), h0 + H, 360.0), (h0 + 3 * H, h0 + 2 * H, 540.0)]
    for at, as_of, kwh in cases:
        body = get(client, auth, url, at=_iso(at)).get_json()
        assert (body["as_of"], body["consumed"]) == (as_of and _iso(as_of), pytest.approx(kwh)), at


def test_bounds_and_roles(client, auth, device):
    url = f"/api/v1/devices/{device['id']}/energy"
    h0 = hour_ago(2)
    assert_error(get(client, auth, url, start=_iso(h0 + timedelta(minutes=5)), end=_iso(h0 + H)), 422)
    assert_error(get(client, auth, url, start=_iso(h0 + H), end=_iso(h0)), 422)
    assert_error(get(client, auth, url, start=_iso(h0 - 20_000 * H), end=_iso(h0)), 422)
    assert_error(get(client, auth, url, resolution="week"), 422)
    assert_error(get(client, auth, url, None), 401)
    assert_error(get(client, auth, "/api/v1/devices/00000000-0000-0000-0000-000000000000/energy"), 404)
    body = get(client, auth, url).get_json()  # default: the 24 hours up to the end of this hour, all empty
    assert len(body["intervals"]) == 24 and body["total"]["coverage"] == 0.0
