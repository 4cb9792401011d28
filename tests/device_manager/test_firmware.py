"""Firmware images: uploaded into S3 (the suite's SeaweedFS), measured by the server, rolled out by pre-signed URL."""

from __future__ import annotations

import hashlib
import io

import pytest
import requests

from tests.device_manager import test_commands
from tests.device_manager.conftest import assert_error
from tests.support import procs
from tests.support.poll import wait_for

fake_device = test_commands.fake_device  # the MQTT subscriber playing the device (a fixture)

IMAGE = bytes(range(256)) * 64 + b"tail"


CREDENTIALS = ("firmware-tests", "firmware-tests-secret")


@pytest.fixture(scope="module")
def s3_secured(tmp_path_factory):
    """A SeaweedFS S3 gateway that checks signatures (the suite's shared one accepts anything, expired URLs too)."""
    server = procs.seaweed_s3(tmp_path_factory.mktemp("s3-secured"), CREDENTIALS).start(timeout=60)
    yield server
    server.stop()


@pytest.fixture
def fw_client(make_app, s3_secured, uid):
    """A client of an app whose firmware bucket is on the secured S3, with short-lived download URLs."""
    app = make_app(s3_endpoint=f"127.0.0.1:{s3_secured.port}", s3_access_key=CREDENTIALS[0],
                   s3_secret_key=CREDENTIALS[1], firmware_bucket=f"fw-{uid}", firmware_url_ttl_s=2,
                   firmware_max_bytes=len(IMAGE) + 10)
    return app.test_client()


def _upload(client, auth, data: bytes = IMAGE, version: str = "2.0.0"):
    return client.post(f"/api/v1/firmware?fw_version={version}&filename=pm.bin", headers={
        **auth["operator"], "Content-Type": "application/octet-stream"}, data=data)


def test_raw_upload_is_measured_by_the_server_and_listed(fw_client, auth):
    r = _upload(fw_client, auth)
    assert r.status_code == 201, r.get_json()
    fw = r.get_json()
    assert (fw["sha256"], fw["size_bytes"]) == (hashlib.sha256(IMAGE).hexdigest(), len(IMAGE))
    assert (fw["fw_version"], fw["filename"]) == ("2.0.0", "pm.bin") and "object_key" not in fw
    assert fw_client.get(f"/api/v1/firmware/{fw['id']}", headers=auth["viewer"]).get_json() == fw
    listed = fw_client.get("/api/v1/firmware?fw_version=2.0.0", headers=auth["viewer"]).get_json()
    assert fw["id"] in [i["id"] for i in listed["items"]]


def test_multipart_upload_takes_the_file_part(fw_client, auth):
    r = fw_client.post("/api/v1/firmware", headers=auth["operator"], content_type="multipart/form-data",
                       data={"fw_version": "2.0.1", "file": (io.BytesIO(IMAGE[:1000]), "small.bin")})
    assert r.status_code == 201, r.get_json()
    fw = r.get_json()
    assert (fw["sha256"], fw["size_bytes"], fw["filename"]) == (hashlib.sha256(IMAGE[:1000]).hexdigest(), 1000,
                                                                "small.bin")


def test_bad_uploads_are_refused(fw_client, auth):
    assert_error(_upload(fw_client, auth, b""), 422)
    assert_error(_upload(fw_client, auth, IMAGE + b"x" * 11), 422)  # over FIRMWARE_MAX_BYTES
    assert_error(_upload(fw_client, auth, version="latest"), 422)
    assert_error(fw_client.post("/api/v1/firmware?fw_version=1.0.0", headers={
        **auth["viewer"], "Content-Type": "application/octet-stream"}, data=IMAGE), 403)
    assert_error(fw_client.get("/api/v1/firmware/00000000-0000-0000-0000-000000000000", headers=auth["viewer"]), 404)


def test_without_an_object_store_uploads_answer_503(client, auth):
    assert_error(_upload(client, auth), 503)


def test_a_rollout_of_an_upload_sends_an_expiring_url_and_the_servers_hash(fw_client, auth, device, fake_device):
    fw = _upload(fw_client, auth).get_json()
    dev = fake_device(device["device_id"])
    r = fw_client.post("/api/v1/ota/rollouts", headers=auth["operator"],
                       json={"firmware_id": fw["id"], "device_ids": [str(device["id"])]})
    assert r.status_code == 201, r.get_json()
    rollout = r.get_json()
    assert (rollout["firmware_id"], rollout["fw_version"], rollout["sent"]) == (fw["id"], "2.0.0", 1)
    params = wait_for(lambda: dev.messages(device["device_id"]), what="start_ota")[0]["params"]
    assert (params["fw_sha256"], params["fw_size_bytes"], params["fw_version"]) == (fw["sha256"], len(IMAGE), "2.0.0")
    assert "X-Amz-Expires=2" in params["fw_url"] and "X-Amz-Signature=" in params["fw_url"]
    got = requests.get(params["fw_url"], timeout=10)
    assert got.status_code == 200 and got.content == IMAGE
    tampered = params["fw_url"].replace("X-Amz-Expires=2", "X-Amz-Expires=3600")
    assert requests.get(tampered, timeout=10).status_code == 403  # the lifetime is part of the signature
    wait_for(lambda: requests.get(params["fw_url"], timeout=10).status_code == 403, timeout=15, what="URL expired")


def test_a_rollout_names_an_upload_or_an_external_image_not_both(fw_client, auth, device):
    fw = _upload(fw_client, auth).get_json()
    both = {"firmware_id": fw["id"], "url": "http://x.local/a.bin", "device_ids": [str(device["id"])]}
    assert_error(fw_client.post("/api/v1/ota/rollouts", headers=auth["operator"], json=both), 422)
    neither = {"fw_version": "2.0.0", "device_ids": [str(device["id"])]}
    assert_error(fw_client.post("/api/v1/ota/rollouts", headers=auth["operator"], json=neither), 422)
    unknown = {"firmware_id": "00000000-0000-0000-0000-000000000000", "device_ids": [str(device["id"])]}
    assert_error(fw_client.post("/api/v1/ota/rollouts", headers=auth["operator"], json=unknown), 422)


def test_images_may_be_larger_than_the_json_body_limit(make_app, s3_secured, auth, uid):
    app = make_app(s3_endpoint=f"127.0.0.1:{s3_secured.port}", s3_access_key=CREDENTIALS[0],
                   s3_secret_key=CREDENTIALS[1], firmware_bucket=f"fw-big-{uid}", max_body_bytes=4096,
                   firmware_max_bytes=len(IMAGE) + 10)
    client = app.test_client()
    assert len(IMAGE) > 4096
    assert _upload(client, auth).get_json()["size_bytes"] == len(IMAGE)
    r = client.post("/api/v1/firmware", headers=auth["operator"], content_type="multipart/form-data",
                    data={"fw_version": "2.0.1", "file": (io.BytesIO(IMAGE), "big.bin")})
    assert r.status_code == 201 and r.get_json()["size_bytes"] == len(IMAGE), r.get_json()
    assert_error(client.post("/api/v1/devices", headers=auth["operator"], json={"name": "x" * 5000}), 413)
