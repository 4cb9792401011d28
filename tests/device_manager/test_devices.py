"""Devices and device types: CRUD, filters, search, sort, pagination, bulk create and ingest tokens."""

from __future__ import annotations

import hashlib

import pytest

from tests.device_manager.conftest import assert_error


def _create(client, auth, type_id, device_id, **extra):
    body = {"device_id": device_id, "name": extra.pop("name", device_id), "device_type_id": str(type_id), **extra}
    return client.post("/api/v1/devices", headers=auth["operator"], json=body)


def test_device_crud(client, auth, device_type, uid):
    r = _create(client, auth, device_type["id"], f"crud-{uid}", serial_number=f"S-{uid}", location="Depot 4",
                metadata={"line": 7})
    assert r.status_code == 201, r.get_json()
    dev = r.get_json()
    assert dev["device_type"] == device_type["name"] and dev["status"] == "active"
    assert dev["connection_status"] == "unknown" and dev["last_seen"] is None and dev["has_ingest_token"] is False
    assert dev["created_at"].endswith("Z")
    key = dev.pop("command_key")  # shown once, on creation; the GET is the device without it
    assert len(bytes.fromhex(key)) == 32
    path = f"/api/v1/devices/{dev['id']}"
    assert client.get(path, headers=auth["viewer"]).get_json() == dev
    r = client.patch(path, headers=auth["operator"], json={"status": "maintenance", "metadata": {"line": 8},
                                                           "location": None})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["status"], r.get_json()["metadata"], r.get_json()["location"]) == (
        "maintenance", {"line": 8}, None)
    assert r.get_json()["device_id"] == f"crud-{uid}"
    assert_error(client.patch(path, headers=auth["operator"], json={"device_id": "renamed"}), 422)
    assert client.delete(path, headers=auth["operator"]).status_code == 204
    assert_error(client.get(path, headers=auth["viewer"]), 404, "not_found")
    assert_error(client.delete(path, headers=auth["operator"]), 404)


def test_device_by_type_name_and_unknown_type(client, auth, device_type, uid):
    r = client.post("/api/v1/devices", headers=auth["operator"],
                    json={"device_id": f"byname-{uid}", "name": "n", "device_type": device_type["name"]})
    assert r.status_code == 201 and r.get_json()["device_type_id"] == str(device_type["id"])
    r = client.post("/api/v1/devices", headers=auth["operator"],
                    json={"device_id": f"bad-{uid}", "name": "n", "device_type": f"missing-{uid}"})
    assert_error(r, 422, "validation_error")
    r = _create(client, auth, "00000000-0000-0000-0000-000000000000", f"fk-{uid}")
    assert_error(r, 422, "validation_error")


@pytest.mark.parametrize("body", [
    {"device_id": "has space", "name": "x"},
    {"device_id": "ok", "name": ""},
    {"device_id": "ok", "name": "x", "status": "exploded"},
    {"device_id": "ok", "name": "x", "metadata": [1, 2]},
    {"device_id": 12, "name": "x"},
    {"device_id": "ok", "name": "x", "device_type": "a", "device_type_id": "00000000-0000-0000-0000-000000000000"},
])
def test_device_bad_input_is_422(client, auth, device_type, body):
    body = {"device_type_id": str(device_type["id"]), **body} if "device_type" not in body else body
    assert_error(client.post("/api/v1/devices", headers=auth["operator"], json=body), 422, "validation_error")


def test_duplicate_device_id_or_serial_is_409(client, auth, device, device_type, uid):
    assert_error(_create(client, auth, device_type["id"], device["device_id"]), 409, "conflict")
    err = assert_error(_create(client, auth, device_type["id"], f"other-{uid}", serial_number=device["serial_number"]),
                       409, "conflict")
    assert "serial_number" in err["details"]["detail"]


def test_filters_search_sort_and_pagination(client, auth, device_type, uid):
    names = ["alpha", "bravo", "charlie", "delta", "echo"]
    for i, name in enumerate(names):
        status = "inactive" if i % 2 else "active"
        assert _create(client, auth, device_type["id"], f"f{i}-{uid}", name=f"{name}-{uid}",
                       serial_number=f"SER{i}-{uid}", status=status).status_code == 201
    base = f"/api/v1/devices?device_type_id={device_type['id']}"
    r = client.get(f"{base}&sort=name&page_size=2", headers=auth["viewer"]).get_json()
    assert r["total"] == 5 and [d["name"] for d in r["items"]] == [f"alpha-{uid}", f"bravo-{uid}"]
    assert r["links"]["prev"] is None and "page=2" in r["links"]["next"]
    nxt = client.get(r["links"]["next"], headers=auth["viewer"]).get_json()
    assert [d["name"] for d in nxt["items"]] == [f"charlie-{uid}", f"delta-{uid}"]
    assert "page=1" in nxt["links"]["prev"]
    last = client.get(f"{base}&sort=-name&page=3&page_size=2", headers=auth["viewer"]).get_json()
    assert [d["name"] for d in last["items"]] == [f"alpha-{uid}"] and last["links"]["next"] is None
    beyond = client.get(f"{base}&page=40&page_size=2", headers=auth["viewer"]).get_json()
    assert beyond["items"] == [] and beyond["total"] == 5 and beyond["links"]["next"] is None
    inactive = client.get(f"{base}&status=inactive", headers=auth["viewer"]).get_json()
    assert {d["name"] for d in inactive["items"]} == {f"bravo-{uid}", f"delta-{uid}"}
    by_name = client.get(f"/api/v1/devices?device_type={device_type['name']}&q=CHARLIE", headers=auth["viewer"])
    assert [d["name"] for d in by_name.get_json()["items"]] == [f"charlie-{uid}"]
    by_serial = client.get(f"/api/v1/devices?q=SER4-{uid}", headers=auth["viewer"]).get_json()
    assert [d["name"] for d in by_serial["items"]] == [f"echo-{uid}"]
    wildcard = client.get(f"/api/v1/devices?device_type_id={device_type['id']}&q=%25", headers=auth["viewer"])
    assert wildcard.get_json()["total"] == 0  # % is matched literally
    unknown = client.get(f"{base}&connection_status=unknown", headers=auth["viewer"]).get_json()
    assert unknown["total"] == 5


def test_connection_status_filter_sees_collector_state(app, client, auth, device, device_type):
    with app.extensions["device_manager"].db.transaction() as cur:
        cur.execute("UPDATE devices SET connection_status = 'online', last_seen = now(), fw_version = '2.1.0' "
                    "WHERE id = %s", (device["id"],))
    r = client.get(f"/api/v1/devices?device_type_id={device_type['id']}&connection_status=online",
                   headers=auth["viewer"]).get_json()
    assert [d["device_id"] for d in r["items"]] == [device["device_id"]]
    assert r["items"][0]["fw_version"] == "2.1.0" and r["items"][0]["last_seen"].endswith("Z")
    offline = client.get(f"/api/v1/devices?device_type_id={device_type['id']}&connection_status=offline",
                         headers=auth["viewer"]).get_json()
    assert offline["total"] == 0


def test_bulk_create_all_or_nothing(client, auth, device_type, uid):
    body = {"devices": [{"device_id": f"b{i}-{uid}", "name": f"b{i}", "device_type": device_type["name"]}
                        for i in range(300)]}
    r = client.post("/api/v1/devices/bulk", headers=auth["operator"], json=body)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["count"] == 300 and r.get_json()["items"][299]["device_id"] == f"b299-{uid}"
    again = {"devices": [{"device_id": f"new-{uid}", "name": "n", "device_type": device_type["name"]},
                         {"device_id": f"b5-{uid}", "name": "dup", "device_type": device_type["name"]}]}
    err = assert_error(client.post("/api/v1/devices/bulk", headers=auth["operator"], json=again), 409, "conflict")
    assert f"b5-{uid}" in err["details"]["detail"]
    r = client.get(f"/api/v1/devices?device_id=new-{uid}", headers=auth["viewer"]).get_json()
    assert r["total"] == 0  # the whole batch was rolled back


def test_bulk_create_limit(make_app, auth, device_type, uid):
    small = make_app(bulk_max=3).test_client()
    body = {"devices": [{"device_id": f"lim{i}-{uid}", "name": "n", "device_type": device_type["name"]}
                        for i in range(4)]}
    assert_error(small.post("/api/v1/devices/bulk", headers=auth["operator"], json=body), 422, "validation_error")
    assert_error(small.post("/api/v1/devices/bulk", headers=auth["operator"], json={"devices": []}), 422)


def test_ingest_token_is_returned_once_and_stored_hashed(app, client, auth, device):
    r = client.post(f"/api/v1/devices/{device['id']}/ingest-token", headers=auth["operator"])
    assert r.status_code == 201, r.get_json()
    token = r.get_json()["token"]
    assert r.get_json()["device_id"] == device["device_id"] and len(token) >= 40
    with app.extensions["device_manager"].db.transaction() as cur:
        cur.execute("SELECT ingest_token_hash FROM devices WHERE id = %s", (device["id"],))
        assert cur.fetchone()[0] == hashlib.sha256(token.encode()).hexdigest()
    shown = client.get(f"/api/v1/devices/{device['id']}", headers=auth["viewer"]).get_json()
    assert shown["has_ingest_token"] is True and token not in str(shown)
    assert client.delete(f"/api/v1/devices/{device['id']}/ingest-token", headers=auth["operator"]).status_code == 204
    assert client.get(f"/api/v1/devices/{device['id']}", headers=auth["viewer"]).get_json()["has_ingest_token"] is False


def test_device_type_crud_and_in_use_conflict(client, auth, device, device_type, uid):
    body = {"name": f"meter_{uid}", "metrics": [{"type": "voltage_dc", "unit": "V", "min": 0, "max": 1500}],
            "send_interval_s": 5, "retention_days": 30}
    r = client.post("/api/v1/device-types", headers=auth["admin"], json=body)
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    assert created["hello_interval_s"] == 60 and created["device_count"] == 0
    path = f"/api/v1/device-types/{created['id']}"
    r = client.patch(path, headers=auth["admin"], json={"description": "DC meter", "hello_interval_s": 120})
    assert r.get_json()["description"] == "DC meter" and r.get_json()["hello_interval_s"] == 120
    assert_error(client.post("/api/v1/device-types", headers=auth["admin"], json=body), 409, "conflict")
    assert client.delete(path, headers=auth["admin"]).status_code == 204
    used = f"/api/v1/device-types/{device_type['id']}"
    assert client.get(used, headers=auth["viewer"]).get_json()["device_count"] == 1
    assert_error(client.delete(used, headers=auth["admin"]), 409, "conflict")


@pytest.mark.parametrize("body", [
    {"name": "bad name!"},
    {"name": "ok_name", "metrics": [{"type": "t", "unit": "V", "min": 10, "max": 1}]},
    {"name": "ok_name", "metrics": [{"type": "t", "unit": "V"}, {"type": "t", "unit": "A"}]},
    {"name": "ok_name", "send_interval_s": 0},
    {"name": "ok_name", "retention_days": "long"},
])
def test_device_type_bad_input(client, auth, body):
    assert_error(client.post("/api/v1/device-types", headers=auth["admin"], json=body), 422, "validation_error")


def test_device_type_list_sort_and_filter(client, auth, uid):
    for name in ("zulu", "alpha"):
        client.post("/api/v1/device-types", headers=auth["admin"], json={"name": f"{name}_{uid}"})
    r = client.get(f"/api/v1/device-types?q={uid}&sort=-name", headers=auth["viewer"]).get_json()
    assert [t["name"] for t in r["items"]] == [f"zulu_{uid}", f"alpha_{uid}"]
    exact = client.get(f"/api/v1/device-types?name=alpha_{uid}", headers=auth["operator"]).get_json()
    assert exact["total"] == 1


def test_large_list_totals_are_reused_for_the_cache_ttl_only(app, client, auth, device_type, uid):
    from device_manager.repositories.counts import CountCache

    now = [0.0]
    store = app.extensions["device_manager"].devices.devices
    saved, store.counts = store.counts, CountCache(ttl=2.0, min_rows=3, clock=lambda: now[0])
    try:
        for i in range(3):
            assert _create(client, auth, device_type["id"], f"c{i}-{uid}").status_code == 201
        url = f"/api/v1/devices?device_type_id={device_type['id']}&page_size=1"
        assert client.get(url, headers=auth["viewer"]).get_json()["total"] == 3
        assert _create(client, auth, device_type["id"], f"c3-{uid}").status_code == 201
        page = client.get(url, headers=auth["viewer"]).get_json()
        assert page["total"] == 3 and len(page["items"]) == 1  # the count was reused; the page is fresh
        now[0] = 2.5
        assert client.get(url, headers=auth["viewer"]).get_json()["total"] == 4
        small = client.get(f"{url}&q=c0-{uid}", headers=auth["viewer"]).get_json()
        assert small["total"] == 1  # below min_rows: never cached
    finally:
        store.counts = saved
