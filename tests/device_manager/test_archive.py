"""Legacy archive API: list and download per-device objects of the old layout (S3 and filesystem); no traversal."""

from __future__ import annotations

import gzip
import io
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import orjson
import pytest
from minio import Minio

from tests.device_manager.conftest import assert_error
from tests.support.procs import free_port

T0 = datetime(2026, 3, 1, 23, 55, tzinfo=UTC)
ACCESS, SECRET = "iothub-test", "iothub-test-secret"


@dataclass
class FakeDelivery:
    """What the collector's writers read from a broker delivery."""

    body: bytes
    headers: dict
    message_id: str | None


def write_legacy(store, batch: list[FakeDelivery], gz: bool = False) -> None:
    """Objects in the per-device layout the archive writer used before shared objects (docs/archive.md)."""
    windows: dict[str, list[bytes]] = {}
    for delivery in batch:
        item = orjson.loads(delivery.body)
        ts = datetime.fromisoformat(item["ts"])
        start = ts - timedelta(minutes=ts.minute % 5, seconds=ts.second, microseconds=ts.microsecond)
        key = f"{item['device_id']}/{item['msg_type']}/{start:%Y/%m/%d/%H%M%S}.ndjson" + (".gz" if gz else "")
        windows.setdefault(key, []).append(delivery.body + b"\n")
    for key, lines in windows.items():
        body = b"".join(lines)
        store.put(key, gzip.compress(body, mtime=0) if gz else body)


def ingest(device_id: str, msg_type: str, ts: datetime, seq: int) -> FakeDelivery:
    from iothub.contract.ingest import IngestMessage

    body = {"measurements": [{"ts": ts.isoformat(), "type": "temperature", "val": 20.5, "unit": "Cel"}]} \
        if msg_type == "telemetry" else {"fw_version": "1.0.0"}
    msg = IngestMessage(str(uuid.uuid4()), device_id, "power_meter_dc", msg_type, ts.isoformat(), seq, 0,
                        ts.isoformat(), "mqtt", body)
    return FakeDelivery(msg.encode(), {}, msg.msg_id)


@pytest.fixture
def s3_app(make_app, s3_server, uid):
    bucket = f"arch-{uid}"
    app = make_app(archive_backend="s3", s3_endpoint=f"127.0.0.1:{s3_server.port}", s3_access_key=ACCESS,
                   s3_secret_key=SECRET, s3_bucket=bucket)
    return app, bucket


@pytest.fixture
def archived(s3_app, s3_server, device):
    """Windows written by the collector's ArchiveWriter: telemetry at 23:55, 00:00, 00:05; hello at 00:00; a
    neighbour's window and a preserved corrupt object."""
    from collector.writers.store_s3 import S3ObjectStore

    app, bucket = s3_app
    device_id = device["device_id"]
    store = S3ObjectStore(f"127.0.0.1:{s3_server.port}", ACCESS, SECRET, bucket)
    batch = [ingest(device_id, "telemetry", T0 + timedelta(minutes=m, seconds=10), m) for m in (0, 5, 10)]
    batch += [ingest(device_id, "hello", T0 + timedelta(minutes=5, seconds=1), 99),
              ingest(device_id + "-other", "telemetry", T0 + timedelta(minutes=5), 1)]
    write_legacy(store, batch)
    store.put(f"{device_id}/telemetry/2026/03/02/000000.ndjson.corrupt-1", b"garbage")
    return app, store, device


def list_url(device, **params) -> str:
    return f"/api/v1/devices/{device['id']}/archive?{urlencode(params, doseq=True)}"


def test_lists_windows_overlapping_the_range_across_days_and_categories(archived, auth):
    app, _, device = archived
    client, did = app.test_client(), device["device_id"]
    resp = client.get(list_url(device, start="2026-03-01T23:58:00Z", end="2026-03-02T00:04:00Z"),
                      headers=auth["viewer"])
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert [i["key"] for i in body["items"]] == [f"{did}/telemetry/2026/03/01/235500.ndjson",
                                                 f"{did}/hello/2026/03/02/000000.ndjson",
                                                 f"{did}/telemetry/2026/03/02/000000.ndjson"]
    first = body["items"][0]
    assert (first["category"], first["window_start"], first["content_type"]) == (
        "telemetry", "2026-03-01T23:55:00Z", "application/x-ndjson")
    assert first["size"] > 0 and body["truncated"] is False and body["device_id"] == did
    only = client.get(list_url(device, start="2026-03-01T23:00:00Z", end="2026-03-02T01:00:00Z",
                               category="telemetry"), headers=auth["viewer"]).get_json()
    assert [i["window_start"] for i in only["items"]] == [
        "2026-03-01T23:55:00Z", "2026-03-02T00:00:00Z", "2026-03-02T00:05:00Z"]
    cut = client.get(list_url(device, start="2026-03-01T23:00:00Z", end="2026-03-02T01:00:00Z", limit=2),
                     headers=auth["viewer"]).get_json()
    assert len(cut["items"]) == 2 and cut["truncated"] is True


def test_download_streams_the_stored_bytes(archived, auth):
    app, store, device = archived
    key = f"{device['device_id']}/telemetry/2026/03/02/000000.ndjson"
    resp = app.test_client().get(f"/api/v1/devices/{device['id']}/archive/{key}", headers=auth["viewer"])
    assert resp.status_code == 200
    assert resp.data == store.get(key) and resp.data.count(b"\n") == 1
    assert resp.mimetype == "application/x-ndjson"
    assert resp.headers["Content-Length"] == str(len(resp.data))
    assert "attachment" in resp.headers["Content-Disposition"]


def test_gzip_objects_download_as_gzip(s3_app, s3_server, device, auth):
    app, bucket = s3_app
    client = Minio(f"127.0.0.1:{s3_server.port}", access_key=ACCESS, secret_key=SECRET, secure=False)
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    key = f"{device['device_id']}/status/2026/03/02/001000.ndjson.gz"
    data = gzip.compress(b'{"msg_id": "m1"}\n', mtime=0)
    client.put_object(bucket, key, io.BytesIO(data), len(data))
    resp = app.test_client().get(f"/api/v1/devices/{device['id']}/archive/{key}", headers=auth["viewer"])
    assert (resp.status_code, resp.mimetype, gzip.decompress(resp.data)) == (200, "application/gzip",
                                                                            b'{"msg_id": "m1"}\n')


@pytest.mark.parametrize("key", [
    "{other}/telemetry/2026/03/02/000000.ndjson",            # a real object of another device
    "{did}/telemetry/2026/03/02/000000.ndjson.corrupt-1",    # not in the layout
    "{did}/../{other}/telemetry/2026/03/02/000000.ndjson",
    "{did}/telemetry/2026/03/02/../../../../{other}/telemetry/2026/03/02/000000.ndjson",
    "{did}/secrets/2026/03/02/000000.ndjson",
    "{did}/telemetry/2026/13/02/000000.ndjson",
    "{did}/telemetry/2026/03/02/000000.ndjson/",
    "%2e%2e%2f{other}/telemetry/2026/03/02/000000.ndjson",
    "{did}/telemetry/2026/03/02/235959.ndjson",              # well formed, absent
])
def test_keys_outside_the_device_layout_are_404(archived, auth, key):
    app, _, device = archived
    path = key.format(did=device["device_id"], other=device["device_id"] + "-other")
    resp = app.test_client().get(f"/api/v1/devices/{device['id']}/archive/{path}", headers=auth["viewer"])
    assert_error(resp, 404, "not_found")


@pytest.mark.parametrize(("params", "field"), [
    ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "start"),
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
    ({"category": "secrets"}, "category"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"start": "2026-03-01"}, "start"),
    ({"prefix": "../"}, "prefix"),
])
def test_bad_list_queries_are_422(s3_app, auth, device, params, field):
    app, _ = s3_app
    err = assert_error(app.test_client().get(list_url(device, **params), headers=auth["viewer"]), 422,
                       "validation_error")
    assert field in err["details"]["query"]


def test_roles_and_unknown_device(archived, auth):
    app, _, device = archived
    client = app.test_client()
    key = f"{device['device_id']}/hello/2026/03/02/000000.ndjson"
    for role in ("admin", "operator", "viewer"):
        assert client.get(list_url(device), headers=auth[role]).status_code == 200
        assert client.get(f"/api/v1/devices/{device['id']}/archive/{key}", headers=auth[role]).status_code == 200
    assert_error(client.get(list_url(device)), 401)
    assert_error(client.get(f"/api/v1/devices/{device['id']}/archive/{key}"), 401)
    assert_error(client.get(f"/api/v1/devices/{uuid.uuid4()}/archive", headers=auth["viewer"]), 404)
    assert_error(client.get(f"/api/v1/devices/{uuid.uuid4()}/archive/{key}", headers=auth["viewer"]), 404)


def test_filesystem_backend_lists_downloads_and_cannot_escape(make_app, auth, device, tmp_path):
    from collector.writers.store_fs import FilesystemObjectStore

    root = tmp_path / "archive"
    did = device["device_id"]
    write_legacy(FilesystemObjectStore(root), [ingest(did, "telemetry", T0 + timedelta(seconds=30), 1)], gz=True)
    (tmp_path / "outside.ndjson").write_bytes(b"secret")
    day = root / did / "ota_status" / "2026" / "03" / "01"
    day.mkdir(parents=True)
    os.symlink(tmp_path / "outside.ndjson", day / "235500.ndjson")  # a link out of the root is never followed
    app = make_app(archive_backend="filesystem", archive_dir=str(root))
    client = app.test_client()
    body = client.get(list_url(device, start="2026-03-01T23:00:00Z", end="2026-03-02T00:00:00Z",
                               category="telemetry"), headers=auth["viewer"]).get_json()
    assert [i["key"] for i in body["items"]] == [f"{did}/telemetry/2026/03/01/235500.ndjson.gz"]
    resp = client.get(f"/api/v1/devices/{device['id']}/archive/{body['items'][0]['key']}", headers=auth["viewer"])
    assert resp.status_code == 200 and b'"seq":1' in gzip.decompress(resp.data)
    links = client.get(list_url(device, start="2026-03-01T23:00:00Z", end="2026-03-02T00:00:00Z",
                                category="ota_status"), headers=auth["viewer"]).get_json()
    assert links["items"] == []  # the symlink is not even listed
    for path in (f"{did}/ota_status/2026/03/01/235500.ndjson", quote("../outside.ndjson"), "..%2Foutside.ndjson"):
        assert_error(client.get(f"/api/v1/devices/{device['id']}/archive/{path}", headers=auth["viewer"]), 404)


def test_unreachable_s3_is_503(make_app, auth, device):
    app = make_app(archive_backend="s3", s3_endpoint=f"127.0.0.1:{free_port()}", s3_access_key=ACCESS,
                   s3_secret_key=SECRET)
    resp = app.test_client().get(list_url(device), headers=auth["viewer"])
    assert_error(resp, 503, "unavailable")
