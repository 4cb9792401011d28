"""Every command the API publishes is signed with the device's own key; the key is shown once and can be rotated."""

from __future__ import annotations

import pytest

from iothub.contract.signing import SignatureError, verify
from tests.device_manager import test_commands
from tests.device_manager.conftest import assert_error
from tests.support.poll import wait_for

fake_device = test_commands.fake_device  # the MQTT subscriber playing the device (a fixture)


def _received(dev, device_id: str, n: int = 1) -> list[dict]:
    return wait_for(lambda: len(m := dev.messages(device_id)) >= n and m, what=f"{n} command(s) on MQTT")


def test_a_published_command_verifies_with_the_key_given_at_registration(client, auth, device, fake_device):
    dev = fake_device(device["device_id"])
    r = client.post(f"/api/v1/devices/{device['id']}/commands", headers=auth["operator"],
                    json={"cmd": "update_config", "params": {"send_interval_s": 5}, "expires_in_s": 120})
    assert r.status_code == 201 and r.get_json()["status"] == "sent", r.get_json()
    body = _received(dev, device["device_id"])[0]
    assert set(body) == {"v", "cmd_id", "ts", "exp", "cmd", "params", "sig"}
    verify(bytes.fromhex(device["command_key"]), device["device_id"], body)  # raises when it does not verify
    with pytest.raises(SignatureError, match="bad signature"):
        verify(bytes.fromhex(device["command_key"]), device["device_id"], {**body, "params": {"send_interval_s": 1}})


def test_bulk_created_devices_each_get_their_own_key_and_bulk_commands_are_signed_per_device(
        client, auth, device_type, uid, fake_device):
    items = test_commands._devices(client, auth, device_type, uid, 3, prefix="sig")
    keys = {d["device_id"]: bytes.fromhex(d["command_key"]) for d in items}
    assert len(set(keys.values())) == 3
    dev = fake_device(*keys)
    r = client.post("/api/v1/commands/bulk", headers=auth["operator"],
                    json={"cmd": "reboot", "device_ids": [d["id"] for d in items]})
    assert r.get_json()["sent"] == 3
    for device_id, key in keys.items():
        body = _received(dev, device_id)[0]
        verify(key, device_id, body)
        other = next(k for d, k in keys.items() if d != device_id)
        with pytest.raises(SignatureError):
            verify(other, device_id, body)


def test_the_key_is_never_returned_by_a_get(client, auth, device):
    shown = [client.get(f"/api/v1/devices/{device['id']}", headers=auth["viewer"]).get_json(),
             client.get(f"/api/v1/devices?device_id={device['device_id']}", headers=auth["viewer"]).get_json(),
             client.get(f"/api/v1/devices/{device['id']}/command-key", headers=auth["viewer"]).get_json()]
    assert all(device["command_key"] not in str(s) and "command_key" not in str(s).replace("has_command_key", "")
               for s in shown)
    assert shown[2]["has_command_key"] is True and shown[2]["version"] == 1 and shown[2]["rotated_at"] is None


def test_rotation_is_for_operators_and_the_next_command_uses_the_new_key(client, auth, device, fake_device):
    path = f"/api/v1/devices/{device['id']}/command-key/rotate"
    assert_error(client.post(path, headers=auth["viewer"]), 403)
    r = client.post(path, headers=auth["operator"])
    assert r.status_code == 200, r.get_json()
    rotated = r.get_json()
    assert rotated["version"] == 2 and rotated["rotated_at"] and rotated["device_id"] == device["device_id"]
    new, old = bytes.fromhex(rotated["command_key"]), bytes.fromhex(device["command_key"])
    assert new != old
    info = client.get(f"/api/v1/devices/{device['id']}/command-key", headers=auth["viewer"]).get_json()
    assert info["version"] == 2 and "command_key" not in info
    dev = fake_device(device["device_id"])
    client.post(f"/api/v1/devices/{device['id']}/commands", headers=auth["operator"], json={"cmd": "request_status"})
    body = _received(dev, device["device_id"])[0]
    verify(new, device["device_id"], body)
    with pytest.raises(SignatureError, match="bad signature"):
        verify(old, device["device_id"], body)


def test_rotating_an_unknown_device_is_404(client, auth):
    assert_error(client.post("/api/v1/devices/00000000-0000-0000-0000-000000000000/command-key/rotate",
                             headers=auth["operator"]), 404, "not_found")


def test_a_device_without_a_key_gets_no_command(app, client, auth, device_type, uid):
    with app.extensions["device_manager"].db.transaction(dict_rows=True) as cur:  # registered before keys existed
        cur.execute("INSERT INTO devices (device_id, name, device_type_id) VALUES (%s, %s, %s) RETURNING id",
                    (f"keyless-{uid}", "keyless", device_type["id"]))
        row_id = cur.fetchone()["id"]
    r = client.post(f"/api/v1/devices/{row_id}/commands", headers=auth["operator"], json={"cmd": "reboot"})
    assert r.status_code == 201 and r.get_json()["status"] == "pending"  # never published unsigned; it expires
    info = client.get(f"/api/v1/devices/{row_id}/command-key", headers=auth["viewer"]).get_json()
    assert info["has_command_key"] is False and info["version"] is None
