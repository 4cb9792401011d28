"""Signed commands and firmware use cases against in-memory ports: what is signed, until when, and what is measured."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest

from device_manager.service.command_keys import CommandKeyService
from device_manager.service.commands import Outgoing
from device_manager.service.errors import Invalid, NotFound, Unavailable
from device_manager.service.firmware import FirmwareService, TooLarge
from device_manager.service.signing import SignedPublisher, body_of

NOW = datetime(2026, 2, 12, 10, 10, 0, 123456, tzinfo=UTC)


class _Transport:
    def __init__(self):
        self.sent: list[Outgoing] = []

    def publish_many(self, commands):
        self.sent.extend(commands)
        return {c.cmd_id for c in commands}


class _Signer:
    """Signs as 'sig:<device>:<exp>' for the devices it has keys for."""

    def __init__(self, *with_keys: str):
        self.with_keys = set(with_keys)
        self.seen: list[tuple[str, dict]] = []

    def sign_many(self, items):
        self.seen.extend(items)
        return [f"sig:{d}:{b['exp']}" if d in self.with_keys else None for d, b in items]


def _publisher(signer, ttl_s: int = 3600):
    transport, unsigned = _Transport(), []
    return SignedPublisher(transport, signer, timedelta(seconds=ttl_s), clock=lambda: NOW,
                           on_unsigned=unsigned.append), transport, unsigned


def test_commands_are_stamped_signed_and_valid_until_they_expire():
    publisher, transport, _ = _publisher(_Signer("a"))
    acked = publisher.publish_many([Outgoing("a", "c1", "reboot", {}, expires_at=NOW + timedelta(minutes=5))])
    assert acked == {"c1"}
    (sent,) = transport.sent
    assert (sent.ts, sent.exp, sent.sig) == ("2026-02-12T10:10:00Z", "2026-02-12T10:15:00Z",
                                             "sig:a:2026-02-12T10:15:00Z")
    assert body_of(sent) == {"cmd_id": "c1", "ts": sent.ts, "exp": sent.exp, "cmd": "reboot", "params": {}}


def test_the_signature_never_outlives_the_ttl():
    publisher, transport, _ = _publisher(_Signer("a"), ttl_s=60)
    publisher.publish_many([Outgoing("a", "c1", "reboot", {}, expires_at=NOW + timedelta(days=7)),
                            Outgoing("a", "c2", "reboot", {})])
    assert [c.exp for c in transport.sent] == ["2026-02-12T10:11:00Z"] * 2


def test_a_device_without_a_key_gets_nothing_and_is_counted():
    publisher, transport, unsigned = _publisher(_Signer("a"))
    acked = publisher.publish_many([Outgoing("a", "c1", "reboot", {}), Outgoing("b", "c2", "reboot", {})])
    assert (acked, [c.cmd_id for c in transport.sent], unsigned) == ({"c1"}, ["c1"], [1])
    publisher, transport, unsigned = _publisher(_Signer())
    assert publisher.publish_many([Outgoing("b", "c3", "reboot", {})]) == set() and transport.sent == []


class _Keys:
    def __init__(self):
        self.rows: dict = {}
        self.devices = {"u1": "dev-1"}

    def put_many(self, rows):
        self.rows.update(dict(rows))

    def replace(self, device_uuid, wrapped):
        self.rows[device_uuid] = wrapped
        return {"version": 2, "created_at": NOW, "rotated_at": NOW}

    def identity(self, device_uuid):
        return self.devices.get(device_uuid)

    def info(self, device_uuid):
        return None if device_uuid not in self.devices else {"device_id": self.devices[device_uuid], "version": None,
                                                             "created_at": None, "rotated_at": None}


class _Cipher:
    def __init__(self):
        self.n = 0

    def new_key(self):
        self.n += 1
        return bytes([self.n]) * 32

    def wrap(self, device_id, key):
        return device_id.encode() + b"|" + key


def test_keys_are_issued_per_device_stored_wrapped_and_shown_as_hex():
    keys = _Keys()
    service = CommandKeyService(keys, _Cipher())
    out = service.issue([{"id": "u1", "device_id": "dev-1"}, {"id": "u2", "device_id": "dev-2"}])
    assert [d["command_key"] for d in out] == ["01" * 32, "02" * 32]
    assert keys.rows == {"u1": b"dev-1|" + b"\x01" * 32, "u2": b"dev-2|" + b"\x02" * 32}
    rotated = service.rotate("u1")
    assert (rotated["command_key"], rotated["version"], keys.rows["u1"]) == ("03" * 32, 2, b"dev-1|" + b"\x03" * 32)
    with pytest.raises(NotFound):
        service.rotate("nope")
    assert service.info("u1")["has_command_key"] is False


class _Images:
    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def put(self, key, data, size):
        self.objects[key] = data.read()
        assert len(self.objects[key]) == size

    def download_url(self, key, ttl):
        return f"https://s3.test/{key}?ttl={int(ttl.total_seconds())}"


class _Records:
    def __init__(self):
        self.rows: dict = {}

    def create(self, row):
        self.rows[row["id"]] = row
        return row

    def get(self, firmware_id):
        return self.rows.get(firmware_id)

    def list(self, req):
        raise NotImplementedError


def _firmware(images=None, max_bytes=3 * 1024 * 1024):
    return FirmwareService(images, _Records(), max_bytes=max_bytes, url_ttl=timedelta(minutes=10))


def test_an_upload_is_measured_while_it_is_stored_and_rolled_out_by_expiring_url():
    images = _Images()
    service = _firmware(images)
    data = b"\x5a" * (2 * 1024 * 1024 + 3)  # more than one read chunk
    row = service.upload("2.0.0", "pm.bin", io.BytesIO(data), "ops@example.test")
    assert (row["sha256"], row["size_bytes"]) == (hashlib.sha256(data).hexdigest(), len(data))
    assert images.objects[row["object_key"]] == data
    source = service.rollout_source(row["id"])
    assert source == {"firmware_id": row["id"], "fw_version": "2.0.0", "sha256": row["sha256"],
                      "size_bytes": len(data), "url": f"https://s3.test/{row['object_key']}?ttl=600"}


def test_empty_oversized_and_storeless_uploads_and_unknown_images_are_refused():
    images = _Images()
    with pytest.raises(Invalid):
        _firmware(images).upload("2.0.0", None, io.BytesIO(b""), "ops")
    with pytest.raises(TooLarge):
        _firmware(images, max_bytes=10).upload("2.0.0", None, io.BytesIO(b"x" * 11), "ops")
    assert images.objects == {}
    with pytest.raises(Unavailable):
        _firmware(None).upload("2.0.0", None, io.BytesIO(b"x"), "ops")
    with pytest.raises(Invalid):
        _firmware(images).rollout_source("00000000-0000-0000-0000-000000000000")
