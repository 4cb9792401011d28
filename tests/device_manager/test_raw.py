"""Raw messages API: exactly a device's archived messages in range, in time order, paged, from shared objects."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import orjson
import pytest
from minio import Minio

from tests.device_manager.conftest import assert_error
from tests.device_manager.test_archive import ACCESS, SECRET, ingest

T0 = datetime(2026, 3, 1, 23, 55, tzinfo=UTC)


def _writer(store, db):
    from collector.writers.archive import ArchiveWriter
    from collector.writers.archive_postgres import PostgresArchiveIndex

    return ArchiveWriter(store, PostgresArchiveIndex(db), window_s=300, gzip_=True)


def _fleet_batches(did: str) -> tuple[list, list, list[int]]:
    """Two batches of the device among neighbours (the second redelivers one); the in-range seqs in time order."""
    first = [ingest(did, "telemetry", T0 + timedelta(seconds=10), 1),
             ingest(did, "hello", T0 + timedelta(seconds=20), 4),
             ingest(did, "telemetry", T0 + timedelta(seconds=70), 2),
             ingest(did, "telemetry", T0 - timedelta(hours=1), 0)]
    first += [ingest(f"{did}-n{i}", "telemetry", T0 + timedelta(seconds=10 + i), 1) for i in range(20)]
    second = [first[0], ingest(did, "telemetry", T0 + timedelta(minutes=5, seconds=10), 3),
              ingest(did, "telemetry", T0 + timedelta(minutes=6, seconds=40), 5)]
    second += [ingest(f"{did}-n{i}", "telemetry", T0 + timedelta(minutes=5, seconds=i), 2) for i in range(20)]
    return first, second, [1, 4, 2, 3, 5]


@pytest.fixture(scope="module")
def s3_raw_app(make_app, s3_server):
    """One app per module on its own bucket (every app keeps pooled database connections until the run ends)."""
    from collector.writers.store_s3 import S3ObjectStore

    bucket = f"raw-{uuid.uuid4().hex[:8]}"
    app = make_app(archive_backend="s3", s3_endpoint=f"127.0.0.1:{s3_server.port}", s3_access_key=ACCESS,
                   s3_secret_key=SECRET, s3_bucket=bucket)
    return app, S3ObjectStore(f"127.0.0.1:{s3_server.port}", ACCESS, SECRET, bucket)


@pytest.fixture
def raw_app(s3_raw_app, db, device):
    """The device's messages archived by the collector's writer in shared objects with its neighbours."""
    app, store = s3_raw_app
    first, second, seqs = _fleet_batches(device["device_id"])
    writer = _writer(store, db)
    assert writer(first) == {} and writer(second) == {}
    return app, store, seqs


def _keys(db, device_id: str) -> dict[str, str]:
    """Object key -> msg_type of the objects holding the device's messages, from the index."""
    with db.transaction() as cur:
        cur.execute("SELECT DISTINCT o.key, o.msg_type FROM archive_messages m JOIN archive_objects o "
                    "ON o.id = m.object_id WHERE m.device_id = %s", (device_id,))
        return dict(cur.fetchall())


def raw_url(device, **params) -> str:
    return f"/api/v1/devices/{device['id']}/raw?{urlencode(params)}"


RANGE = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=10)).isoformat()}


def _lines(resp) -> list[dict]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/x-ndjson"
    return [orjson.loads(line) for line in resp.data.splitlines()]


def test_returns_exactly_the_devices_messages_in_range_in_time_order(raw_app, device, auth, db):
    app, store, seqs = raw_app
    resp = app.test_client().get(raw_url(device, **RANGE), headers=auth["viewer"])
    lines = _lines(resp)
    assert [line["seq"] for line in lines] == seqs  # neighbours, the redelivery and the older message left out
    assert {line["device_id"] for line in lines} == {device["device_id"]}
    assert "Link" not in resp.headers and resp.headers["X-Archive-Missing"] == "0"
    keys = _keys(db, device["device_id"])
    assert sorted(keys.values()) == ["hello", "telemetry", "telemetry", "telemetry"]  # 23:55, 22:55; 00:00
    assert all(key in store.list("raw/") for key in keys)
    inner = app.test_client().get(raw_url(device, **{"from": (T0 + timedelta(minutes=1)).isoformat(),
                                                    "to": (T0 + timedelta(minutes=5, seconds=10)).isoformat()}),
                                  headers=auth["viewer"])
    assert [line["seq"] for line in _lines(inner)] == [2]  # from inclusive, to exclusive


def test_pages_follow_the_link_header_without_gaps_or_repeats(raw_app, device, auth):
    app, _, seqs = raw_app
    client, url, pages = app.test_client(), raw_url(device, limit=2, **RANGE), []
    while url:
        resp = client.get(url, headers=auth["viewer"])
        pages.append([line["seq"] for line in _lines(resp)])
        link = resp.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert pages == [seqs[0:2], seqs[2:4], seqs[4:]]


def test_an_expired_object_is_counted_not_fatal(raw_app, device, auth, s3_server, db):
    app, store, _ = raw_app
    client = Minio(f"127.0.0.1:{s3_server.port}", access_key=ACCESS, secret_key=SECRET, secure=False)
    hello = next(k for k, msg_type in _keys(db, device["device_id"]).items() if msg_type == "hello")
    client.remove_object(store.bucket, hello)
    resp = app.test_client().get(raw_url(device, **RANGE), headers=auth["viewer"])
    assert [line["seq"] for line in _lines(resp)] == [1, 2, 3, 5]
    assert resp.headers["X-Archive-Missing"] == "1"


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"from": "2026-03-01"}, "from"),
    ({"after": "bm90IGEgY3Vyc29y"}, "after"),
    ({"after": base64.urlsafe_b64encode(f"{T0.isoformat()}|{10**30}|{uuid.uuid4()}".encode()).decode()}, "after"),
    ({"prefix": "raw/"}, "prefix"),
])
def test_bad_queries_are_422(raw_app, device, auth, params, field):
    app, _, _ = raw_app
    err = assert_error(app.test_client().get(raw_url(device, **params), headers=auth["viewer"]), 422,
                       "validation_error")
    assert field in err["details"]["query"]


def test_roles_and_unknown_device(raw_app, device, auth):
    app, _, _ = raw_app
    client = app.test_client()
    for role in ("admin", "operator", "viewer"):
        assert client.get(raw_url(device, **RANGE), headers=auth[role]).status_code == 200
    assert_error(client.get(raw_url(device, **RANGE)), 401)
    assert_error(client.get(f"/api/v1/devices/{uuid.uuid4()}/raw", headers=auth["viewer"]), 404)


def test_filesystem_backend_serves_the_same_messages(make_app, db, device, auth, tmp_path):
    from collector.writers.store_fs import FilesystemObjectStore

    root = tmp_path / "archive"
    first, second, seqs = _fleet_batches(device["device_id"])
    writer = _writer(FilesystemObjectStore(root), db)
    assert writer(first) == {} and writer(second) == {}
    app = make_app(archive_backend="filesystem", archive_dir=str(root))
    assert [line["seq"] for line in _lines(app.test_client().get(raw_url(device, **RANGE),
                                                                 headers=auth["viewer"]))] == seqs
